"""One shard of a sharded index: a `LedeIndex` plus what only a sharded index asks of it.

A sharded index (`sharded.py`) numbers the chunks across its shards and gives every shard one
trained FAISS quantizer (decision 45), so a shard stores rows under the ids it is given, says
which id comes next, lists and reads its vectors for training, checkpoints when told, and starts
a view from a template. An index of its own needs none of that; it lives here, beside the
sharded code (`ShardedIndex` opens its shards as `ShardIndex`, and so does a Ray shard actor).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lede.indexer.files import atomic_write
from lede.indexer.index import LedeIndex
from lede.indexer.ingest import EmbeddedBatch
from lede.indexer.views.contract import ViewSpec, view_types

TEMPLATE_SUFFIX = ".template"  # a view's template in a shard's directory (install_template)


class ShardIndex(LedeIndex):
    """A shard's directory, opened (`ShardIndex.open`, `.create`) as a `LedeIndex` whose views
    start from the templates the sharded index installed in it."""

    def view_templates(self) -> dict[str, bytes]:
        """The view templates a sharded index installed in this shard (`install_template`)."""
        found = {}
        for name in view_types():
            file = self.path / f"{name}{TEMPLATE_SUFFIX}"
            if file.is_file():
                found[name] = file.read_bytes()
        return found

    def install_template(self, view: str, data: bytes | None, lock_timeout: float = 60.0) -> None:
        """Start `view` from this trained, empty state (None: train its own again), rebuild it
        from SQLite and checkpoint: how a sharded index gives every shard one quantizer."""
        if view not in view_types():
            raise ValueError(f"no view named {view!r}")
        with self.writing(lock_timeout):
            file = self.path / f"{view}{TEMPLATE_SUFFIX}"
            if data is None:
                file.unlink(missing_ok=True)
            else:
                atomic_write(file, data)
            self._spec = ViewSpec(self.manifest, self.analyzer, self.view_templates())
            self._rebuild(view)
            self.checkpoint()

    def live_ids(self, view: str) -> np.ndarray:
        """The row ids `view` holds (ids across the sharded index)."""
        with self.reading():
            return np.asarray(self.views[view].live_ids(), dtype=np.int64)

    def stored_embeddings(self, ids: Sequence[int]) -> np.ndarray:
        """These chunks' embeddings from SQLite, in the order given."""
        return self.store.embeddings(list(ids))

    def next_rowid(self) -> int:
        """The row id SQLite would give the next chunk: one above any this shard used."""
        return self.store.next_rowid()

    def write_rows(
        self, batch: EmbeddedBatch, rowids: Sequence[int], lock_timeout: float = 60.0
    ) -> None:
        """Store a prepared batch under the row ids given, under this shard's write lock."""
        with self.writing(lock_timeout):
            self.write_prepared(batch, rowids)

    def checkpoint_now(self, lock_timeout: float = 60.0) -> None:
        """Checkpoint every view now, under the write lock."""
        with self.writing(lock_timeout):
            self.checkpoint()
