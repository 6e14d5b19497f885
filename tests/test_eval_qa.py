"""Quality guard for answers: a slice of `lede eval qa` must match eval/baselines.json.

The answer model is deterministic, so these figures move only when the model, the candidates
or the scoring change; the tolerance absorbs float differences between machines. When a change
is intended, re-run `lede eval qa` and update the baselines with the new figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lede.eval.datasets import SHARED_DATASETS
from lede.eval.qa import qa_slice

pytestmark = [pytest.mark.model, pytest.mark.slow]
BASELINES = json.loads(
    (Path(__file__).resolve().parent.parent / "eval" / "baselines.json").read_text()
)["qa"]


def test_answer_figures_match_baselines() -> None:
    folders = [SHARED_DATASETS / name for name in ("squad-v1.1-dev", "wikiqa", "trecqa")]
    for folder in folders:
        if not (folder / "qa").exists():
            pytest.skip(f"{folder} absent (the datasets live in ../shared/datasets)")
    result = qa_slice(*folders, limit=BASELINES["squad_questions"])
    for dataset, metrics in BASELINES["figures"].items():
        for metric, value in metrics.items():
            actual = result[dataset][metric]
            assert actual == pytest.approx(value, abs=BASELINES["tolerance"]), (
                f"{dataset} {metric}: {actual} vs baseline {value} (±{BASELINES['tolerance']}); "
                "if the change is intended, update eval/baselines.json"
            )
