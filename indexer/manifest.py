"""`manifest.json`: what an index was built with, checked every time it is opened."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lede.indexer.chunker import ChunkerSettings
from lede.indexer.errors import IndexFormatError
from lede.indexer.files import atomic_write
from lede.indexer.text_analysis import AnalyzerSettings
from lede.indexer.views.lexical import BM25Settings

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """Everything that shapes an index's content; fixed when the index is created."""

    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    analyzer: AnalyzerSettings = field(default_factory=AnalyzerSettings)
    bm25: BM25Settings = field(default_factory=BM25Settings)
    bm25_title: bool = True
    faiss_factory: str = "auto"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    dimension: int
    revision: str


@dataclass(frozen=True, slots=True)
class Manifest:
    model: ModelInfo
    settings: IndexSettings
    created_at: str
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "lede-index",
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "model": asdict(self.model),
            "chunker": asdict(self.settings.chunker),
            "analyzer": asdict(self.settings.analyzer),
            "bm25": {**asdict(self.settings.bm25), "title": self.settings.bm25_title},
            "dense": {"factory": self.settings.faiss_factory, "metric": "inner_product"},
        }

    @classmethod
    def new(cls, model: ModelInfo, settings: IndexSettings) -> Manifest:
        return cls(model, settings, datetime.now(UTC).isoformat().replace("+00:00", "Z"))


def write_manifest(directory: Path, manifest: Manifest) -> None:
    data = json.dumps(manifest.to_json(), indent=2).encode()
    atomic_write(directory / MANIFEST_NAME, data + b"\n")


def read_manifest(directory: Path) -> Manifest:
    """Load and validate the manifest.

    Raises:
        IndexFormatError: not an index, an unknown schema version, or a damaged manifest.
    """
    path = directory / MANIFEST_NAME
    if not path.exists():
        raise IndexFormatError(
            f"{directory} is not a Lede index (no {MANIFEST_NAME}); "
            f"create one with: lede index SOURCE --index {directory}"
        )
    try:
        data = json.loads(path.read_text())
        version = data["schema_version"]
        if version != SCHEMA_VERSION:
            raise IndexFormatError(
                f"{path}: schema version {version} is not supported (this Lede reads version "
                f"{SCHEMA_VERSION}); rebuild the index or use a matching Lede version"
            )
        bm25 = dict(data["bm25"])
        title = bool(bm25.pop("title"))
        settings = IndexSettings(
            chunker=ChunkerSettings(**data["chunker"]),
            analyzer=AnalyzerSettings(**data["analyzer"]),
            bm25=BM25Settings(**bm25),
            bm25_title=title,
            faiss_factory=str(data["dense"]["factory"]),
        )
        model = ModelInfo(**data["model"])
    except IndexFormatError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise IndexFormatError(f"{path} is damaged or incomplete: {error!r}") from None
    return Manifest(model, settings, str(data["created_at"]), version)
