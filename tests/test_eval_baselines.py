"""Quality guard: relevance on the small public datasets must match eval/baselines.json.

Like Pyserini's regression tables: expected scores per dataset and mode are kept in version
control and asserted with a tolerance, in both directions, so that a change in quality is
always deliberate (update the baselines file with the new figures and say why).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lede.eval.datasets import SHARED_DATASETS, load_beir
from lede.eval.relevance import RelevanceConfig, evaluate_dataset
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder

pytestmark = [pytest.mark.model, pytest.mark.slow]
BASELINES = json.loads(
    (Path(__file__).resolve().parent.parent / "eval" / "baselines.json").read_text()
)


@pytest.mark.parametrize("name", BASELINES["ci_datasets"])
def test_relevance_matches_baselines(
    name: str, tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} absent (the datasets live in ../shared/datasets)")
    result = evaluate_dataset(load_beir(path), RelevanceConfig(), tmp_path, real_embedder)
    expected = BASELINES["datasets"][name]
    tolerance = BASELINES["tolerance"]
    for mode, metrics in expected.items():
        for metric, value in metrics.items():
            actual = result["metrics"][mode][metric]
            assert actual == pytest.approx(value, abs=tolerance), (
                f"{name} {mode} {metric}: {actual} vs baseline {value} (±{tolerance}); "
                "if the change is intended, update eval/baselines.json"
            )
