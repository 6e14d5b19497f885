"""`lede train answers` end to end on a slice: trains the scorer's and the reader's adapters,
fits the judge and its calibration on news questions, and the written model loads and answers
like the one Lede ships."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lede.eval.datasets import SHARED_DATASETS
from lede.eval.local_server import LEDE
from lede.service.answers.model import BUNDLED, CONFIG, WEIGHTS, AnswerModel
from lede.service.answers.reader import READER_WEIGHTS

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_train_answers_on_a_slice_writes_a_loadable_calibrated_model(tmp_path: Path) -> None:
    for needed in ("trecqa/qa/train.jsonl", "reuters-qa/train.jsonl", "squad-v2.0-dev-half"):
        if not (SHARED_DATASETS / needed).exists():
            pytest.skip(f"{SHARED_DATASETS} absent (the datasets live in ../shared/datasets)")
    out = tmp_path / "model"
    command = [LEDE, "train", "answers", "--out", str(out), "--cache", str(tmp_path / "cache")]
    completed = subprocess.run(
        [*command, "--epochs", "1", "--reader-epochs", "1", "--max-questions", "16"],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    config = json.loads((out / CONFIG).read_text())
    assert config["lora_scale"] == 2.0 and 0 < config["threshold"] < 1
    # the service's score is the cross-encoder's alone; the scorer chose its epoch with the term
    assert (
        config["similarity_weight"] == 0.0
        and config["training"]["settings"]["similarity_weight"] == 12.0
    )
    assert config["calibration"]["slope"] != 1.0  # fitted, not the placeholder
    assert config["reader"]["max_length"] == 192 and config["reader"]["top"] == 4
    assert len(config["combiner"]["weights"]) == len(config["combiner"]["features"])
    training = config["training"]
    assert training["settings"]["seed"] == 13 and training["reader"]["settings"]["seed"] == 13
    assert training["judge"]["train_questions"] == 16 and training["judge"]["dev_questions"] == 16
    sizes = sum((out / name).stat().st_size for name in (WEIGHTS, READER_WEIGHTS, CONFIG))
    assert sizes < 10_000_000
    shipped = json.loads((BUNDLED / CONFIG).read_text())
    # the command's defaults are the shipped model's settings
    assert (
        shipped["training"]["settings"] | {"epochs": 1, "max_questions": 16}
        == (training["settings"])
    )
    assert (
        shipped["training"]["reader"]["settings"] | {"epochs": 1, "max_questions": 16}
        == (training["reader"]["settings"])
    )
    model = AnswerModel(out)
    logits = model.logits("Who plays Ethan Hunt?", [("", "Tom Cruise plays Ethan Hunt."), ("", "")])
    assert logits.shape == (2,)
    assert model.reader is not None
    (span,) = model.reader.read("Who plays Ethan Hunt?", [("", "Tom Cruise plays Ethan Hunt.")])
    assert span is not None and 0 <= span.start < span.end <= len("Tom Cruise plays Ethan Hunt.")
