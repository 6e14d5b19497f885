"""`lede train answers` end to end on a slice: trains adapters, calibrates, and the written
model loads and scores like the one Lede ships."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lede.eval.datasets import SHARED_DATASETS
from lede.eval.local_server import LEDE
from lede.service.answer_model import BUNDLED, CONFIG, WEIGHTS, AnswerModel

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_train_answers_on_a_slice_writes_a_loadable_calibrated_model(tmp_path: Path) -> None:
    if not (SHARED_DATASETS / "trecqa" / "qa" / "train.jsonl").exists():
        pytest.skip(f"{SHARED_DATASETS} absent (the datasets live in ../shared/datasets)")
    out = tmp_path / "model"
    completed = subprocess.run(
        [LEDE, "train", "answers", "--out", str(out), "--epochs", "1", "--max-questions", "6"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    config = json.loads((out / CONFIG).read_text())
    assert config["lora_scale"] == 2.0 and 0 < config["threshold"] < 1
    assert config["similarity_weight"] == 12.0  # the bi-encoder term, calibrated with the rest
    assert config["calibration"]["slope"] != 1.0  # fitted, not the placeholder
    assert config["training"]["settings"]["seed"] == 13
    assert (out / WEIGHTS).stat().st_size < 10_000_000
    shipped = json.loads((BUNDLED / CONFIG).read_text())
    settings = config["training"]["settings"]
    # The shipped model predates the --scifact option (decision 50): it was trained without.
    assert settings.pop("scifact") is shipped["training"]["settings"].get("scifact", False)
    assert (
        shipped["training"]["settings"] | {"epochs": 1, "max_questions": 6} == settings
    )  # the command's defaults are the shipped model's settings
    model = AnswerModel(out)
    logits = model.logits("Who plays Ethan Hunt?", [("", "Tom Cruise plays Ethan Hunt."), ("", "")])
    assert logits.shape == (2,) and 0 <= model.confidence(float(logits[0])) <= 1
