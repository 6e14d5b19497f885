"""Train splits for tuning: WikiQA's answer-selection files as a BEIR view, and the joint grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lede.eval.datasets import SHARED_DATASETS, load_beir
from lede.eval.relevance import RelevanceConfig, evaluate_dataset
from lede.eval.tune import ALPHAS, BS, K1S, TrainSplit, tune
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.views.lexical import BM25Settings
from lede.service.engine import EngineSettings


def _question(qid: str, page: str, labels: list[int]) -> dict[str, object]:
    return {
        "question_id": qid,
        "question": f"question {qid}?",
        "document_id": page,
        "document_title": f"Page {page}",
        "candidates": [
            {"sentence_id": f"{page}-{n}", "sentence": f"Sentence {n} of {page}.", "label": label}
            for n, label in enumerate(labels)
        ],
    }


def _answer_selection_folder(root: Path, questions: list[dict[str, object]]) -> Path:
    (root / "qa").mkdir(parents=True)
    (root / "qa" / "train.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return root


def test_answer_selection_split_becomes_a_beir_view(tmp_path: Path) -> None:
    folder = _answer_selection_folder(
        tmp_path / "wikiqa",
        [
            _question("Q1", "D1", [0, 1, 0]),
            _question("Q2", "D1", [0, 0, 0]),  # no correct sentence: not a query
            _question("Q3", "D2", [1, 1]),
        ],
    )
    dataset = load_beir(folder, "train", views=tmp_path / "views")
    assert dataset.name == "wikiqa-train"
    assert dataset.queries == {"Q1": "question Q1?", "Q3": "question Q3?"}
    assert dataset.qrels == {"Q1": {"D1-1": 1}, "Q3": {"D2-0": 1, "D2-1": 1}}
    corpus = [json.loads(line) for line in dataset.corpus.read_text().splitlines()]
    assert [doc["_id"] for doc in corpus] == ["D1-0", "D1-1", "D1-2", "D2-0", "D2-1"]
    assert corpus[3] == {
        "_id": "D2-0",
        "title": "Page D2",
        "text": "Sentence 0 of D2.",
        "metadata": {"document_id": "D2"},
    }
    assert not (folder / "corpus.jsonl").exists()  # nothing written into the dataset folder
    # A changed source makes a new view instead of reusing the old one.
    _answer_selection_folder(tmp_path / "changed", [_question("Q9", "D9", [1])])
    (folder / "qa" / "train.jsonl").write_text(
        (tmp_path / "changed" / "qa" / "train.jsonl").read_text()
    )
    assert load_beir(folder, "train", views=tmp_path / "views").qrels == {"Q9": {"D9-0": 1}}


def test_a_qa_file_without_candidates_is_refused(tmp_path: Path) -> None:
    folder = _answer_selection_folder(tmp_path / "squad", [{"question_id": "Q1", "question": "?"}])
    with pytest.raises(ValueError, match=r"train.jsonl:1: no 'candidates'"):
        load_beir(folder, "train", views=tmp_path / "views")


@pytest.mark.model
def test_joint_grid_scores_what_the_evaluation_measures(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    """The grid's cell for the shipped defaults equals `lede eval relevance`'s hybrid figure."""
    path = SHARED_DATASETS / "adi"
    if not path.exists():
        pytest.skip(f"{path} absent (the datasets live in ../shared/datasets)")
    config = RelevanceConfig()
    split = TrainSplit(path, "test", config, cache=tmp_path)
    try:
        results = tune([split], BM25Settings())
    finally:
        split.index.close()
    assert len(results["convex_max"]) == len(K1S) * len(BS) * len(ALPHAS)
    means = [row["mean"] for row in results["convex_max"]]
    assert means == sorted(means, reverse=True)
    defaults, engine = BM25Settings(), EngineSettings()
    cell = next(
        row
        for row in results["convex_max"]
        if (row["k1"], row["b"], row["alpha"]) == (defaults.k1, defaults.b, engine.alpha)
    )
    measured = evaluate_dataset(load_beir(path), config, tmp_path, real_embedder)
    assert cell["adi"] == pytest.approx(measured["metrics"]["hybrid"]["ndcg@10"], abs=1e-3)
    assert results["dense_only"]["adi"] == pytest.approx(
        measured["metrics"]["dense"]["ndcg@10"], abs=1e-3
    )
