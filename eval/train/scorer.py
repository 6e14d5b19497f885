"""The answer model's sentence scorer: a cross-encoder fine-tuned from train splits only.

Data (train): WikiQA train (candidates in document order: single sentences and adjacent pairs,
labelled by whether they hold a correct sentence), TrecQA TRAIN-ALL (single sentences, its
`<num>` tokens replaced by random numbers). Dev: WikiQA dev and TrecQA dev pick
the epoch (mean MAP). SQuAD dev and every test split are never read here.

The model is the bundled all-MiniLM-L6-v2 as a BERT classifier with low-rank adapters (or its
top layers) trained; the shipped file is the trained tensors alone, in float16. The service's
score adds `similarity_weight` times the same model's bi-encoder cosine of question and
candidate (not trained; its weight chosen on dev, decision 48). The scorer only ranks: the span
reader and the judge (`train.reader`, `train.judge`) decide what is answered and how sure.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.answer_selection import (
    SelectionQuestion,
    load_selection,
    ranking_metrics,
)
from lede.eval.datasets import SHARED_DATASETS
from lede.eval.report import git_sha, machine
from lede.eval.train.loop import optimizer_and_schedule, step
from lede.service.answers.model import (
    WEIGHTS,
    Calibration,
    ScorerConfig,
    candidate_text,
    load_classifier,
)

logger = logging.getLogger(__name__)

BASE_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class TrainSettings:
    seed: int = 13
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 3e-4
    warmup: float = 0.1
    trained_layers: int = 2
    lora_rank: int = 16  # 0: train the top `trained_layers` layers instead of adapters
    lora_alpha: float = 32.0
    max_length: int = 128
    negatives_per_question: int = 6
    pairs_per_question: int = 3
    # Sentences of other questions' pages: in the service, candidates come from several
    # articles, and a sentence that merely looks like an answer must lose to one on topic.
    foreign_negatives: int = 3
    # Weight of the bi-encoder's cosine in the score (chosen on dev by `lede.eval.answer_features`,
    # decision 48); it is not trained, only added and calibrated.
    similarity_weight: float = 12.0
    max_questions: int | None = None  # for a quick run (tests); None = all


def _units(
    question: SelectionQuestion, rng: random.Random, settings: TrainSettings, pairs: bool
) -> list[tuple[str, str, float]]:
    """(question, second segment, label) examples of one question."""
    examples: list[tuple[str, str, float]] = []
    singles = list(range(len(question.sentences)))
    positives = [i for i in singles if question.labels[i]]
    negatives = [i for i in singles if not question.labels[i]]
    rng.shuffle(negatives)
    keep = positives[:4] + negatives[: settings.negatives_per_question]
    for i in keep:
        text = candidate_text(question.title, question.sentences[i])
        examples.append((question.question, text, float(question.labels[i])))
    if pairs and len(singles) > 1:
        starts = list(range(len(singles) - 1))
        rng.shuffle(starts)
        positive_starts = [i for i in starts if question.labels[i] or question.labels[i + 1]]
        negative_starts = [i for i in starts if i not in positive_starts]
        for i in positive_starts[:2] + negative_starts[: settings.pairs_per_question]:
            text = candidate_text(
                question.title, f"{question.sentences[i]} {question.sentences[i + 1]}"
            )
            label = float(question.labels[i] or question.labels[i + 1])
            examples.append((question.question, text, label))
    return examples


def training_examples(
    wikiqa: list[SelectionQuestion],
    trecqa: list[SelectionQuestion],
    settings: TrainSettings,
) -> list[tuple[str, str, float]]:
    rng = random.Random(settings.seed)
    examples = []
    sources = [(wikiqa, True), (trecqa, False)]
    for questions, pairs in sources:
        for question in questions:
            examples += _units(question, rng, settings, pairs=pairs)
            for _ in range(settings.foreign_negatives if len(questions) > 1 else 0):
                other = questions[rng.randrange(len(questions))]
                if other.question_id != question.question_id and other.sentences:
                    sentence = other.sentences[rng.randrange(len(other.sentences))]
                    examples.append((question.question, candidate_text(other.title, sentence), 0.0))
    rng.shuffle(examples)
    return examples


def _batches(
    examples: list[tuple[str, str, float]], size: int, rng: random.Random
) -> list[list[tuple[str, str, float]]]:
    """Shuffled batches of similar length (less padding), in a shuffled order."""
    shuffled = examples[:]
    rng.shuffle(shuffled)
    pool = size * 50
    batches = []
    for start in range(0, len(shuffled), pool):
        block = sorted(shuffled[start : start + pool], key=lambda e: len(e[0]) + len(e[1]))
        batches += [block[i : i + size] for i in range(0, len(block), size)]
    rng.shuffle(batches)
    return batches


class _LoRALinear:
    """`linear(x) + scale * (x @ A.T) @ B.T`, with A, B trained and the linear frozen."""

    @staticmethod
    def wrap(linear: Any, rank: int, scale: float) -> Any:
        import torch

        class Adapted(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.base = linear
                self.lora_a = torch.nn.Parameter(
                    torch.randn(rank, linear.in_features) / math.sqrt(linear.in_features)
                )
                self.lora_b = torch.nn.Parameter(torch.zeros(linear.out_features, rank))

            def forward(self, x: Any) -> Any:
                return self.base(x) + scale * ((x @ self.lora_a.T) @ self.lora_b.T)

        return Adapted()


def _add_lora(model: Any, rank: int, scale: float) -> None:
    import torch

    for layer in model.bert.encoder.layer:
        for parent in list(layer.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.Linear):
                    setattr(parent, name, _LoRALinear.wrap(child, rank, scale))


def _lora_state(state: dict[str, Any]) -> dict[str, Any]:
    """Adapter names as the base model spells the layer they adapt (`.base.` dropped)."""
    return {name.replace(".base.", "."): tensor for name, tensor in state.items()}


def _trainable(model: Any, layers: int, lora: bool = False) -> list[str]:
    """Names of the parameters that train: the top `layers` encoder layers (or the low-rank
    adapters of every layer), pooler, head."""
    total = len(model.bert.encoder.layer)
    if lora:
        prefixes = ["lora"]
    else:
        prefixes = [f"bert.encoder.layer.{i}." for i in range(total - layers, total)]
    prefixes += ["bert.pooler.", "classifier."]
    for name, parameter in model.named_parameters():
        parameter.requires_grad = any(
            name.startswith(p) or (p == "lora" and ".lora_" in name) for p in prefixes
        )
    return prefixes


class _TorchScorer:
    """The model being trained, behind `AnswerModel.logits`'s signature."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int):
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length

    def logits(self, question: str, candidates: list[tuple[str, str]]) -> np.ndarray:
        import torch

        if not candidates:
            return np.zeros(0)
        self.model.eval()
        with torch.inference_mode():
            encoded = self.tokenizer(
                [question] * len(candidates),
                [candidate_text(t, s) for t, s in candidates],
                truncation="only_second",
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            scores: np.ndarray = self.model(**encoded).logits[:, 0].double().numpy()
            return scores


def dev_map(scorer: Any, questions: list[SelectionQuestion]) -> dict[str, float | int]:
    return ranking_metrics(
        questions,
        lambda q: scorer.logits(q.question, [(q.title, s) for s in q.sentences]).tolist(),
    )


def train_scorer(
    out: Path, settings: TrainSettings, datasets: Path = SHARED_DATASETS
) -> dict[str, Any]:
    import torch
    from safetensors.torch import save_file

    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    wikiqa_train = load_selection(datasets / "wikiqa/qa/train.jsonl", seed=settings.seed)
    trecqa_train = load_selection(datasets / "trecqa/qa/train.jsonl", seed=settings.seed)
    wikiqa_dev = load_selection(datasets / "wikiqa/qa/dev.jsonl")
    trecqa_dev = load_selection(datasets / "trecqa/qa/dev.jsonl")
    if settings.max_questions is not None:
        wikiqa_train = wikiqa_train[: settings.max_questions]
        trecqa_train = trecqa_train[: settings.max_questions]
        wikiqa_dev = wikiqa_dev[: settings.max_questions]
        trecqa_dev = trecqa_dev[: settings.max_questions]
    examples = training_examples(wikiqa_train, trecqa_train, settings)
    logger.info("training on %d examples", len(examples))

    model, tokenizer = load_classifier(BASE_MODEL, None)
    lora_scale = settings.lora_alpha / settings.lora_rank if settings.lora_rank else 0.0
    if settings.lora_rank:
        _add_lora(model, settings.lora_rank, lora_scale)
    prefixes = _trainable(model, settings.trained_layers, lora=bool(settings.lora_rank))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = optimizer_and_schedule(
        parameters,
        settings.learning_rate,
        examples=len(examples),
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        warmup=settings.warmup,
    )
    rng = random.Random(settings.seed)
    scorer = _TorchScorer(model, tokenizer, settings.max_length)
    history: list[dict[str, Any]] = []
    best_state: dict[str, Any] | None = None
    best_dev = -1.0
    started = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        losses: list[float] = []
        for batch in _batches(examples, settings.batch_size, rng):
            encoded = tokenizer(
                [e[0] for e in batch],
                [e[1] for e in batch],
                truncation="only_second",
                max_length=settings.max_length,
                padding=True,
                return_tensors="pt",
            )
            labels = torch.tensor([e[2] for e in batch])
            logits = model(**encoded).logits[:, 0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
            step(
                loss,
                parameters,
                optimizer,
                scheduler,
                losses,
                name="scorer",
                epoch=epoch,
                started=started,
            )
        wikiqa = dev_map(scorer, wikiqa_dev)
        trecqa = dev_map(scorer, trecqa_dev)
        mean = (float(wikiqa["map"]) + float(trecqa["map"])) / 2
        history.append(
            {
                "epoch": epoch,
                "loss": round(float(np.mean(losses)), 4),
                "wikiqa_dev": wikiqa,
                "trecqa_dev": trecqa,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        logger.info("epoch %d: %s", epoch, history[-1])
        if mean > best_dev:
            best_dev = mean
            best_state = {
                name: tensor.detach().clone()
                for name, tensor in _lora_state(model.state_dict()).items()
                if any(name.startswith(p) or (p == "lora" and ".lora_" in name) for p in prefixes)
            }
    assert best_state is not None
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {name: tensor.half().contiguous() for name, tensor in best_state.items()},
        str(out / WEIGHTS),
    )
    training = {
        "command": "lede train answers",
        "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
        "examples": len(examples),
        "epochs": history,
        "chosen_epoch": max(
            history,
            key=lambda h: (float(h["wikiqa_dev"]["map"]) + float(h["trecqa_dev"]["map"])) / 2,
        )["epoch"],
        "git_sha": git_sha(),
        "machine": machine(),
    }
    provisional = ScorerConfig(
        BASE_MODEL,
        tuple(prefixes),
        settings.max_length,
        Calibration(),
        0.5,
        training,
        lora_scale,
        settings.similarity_weight,
    )
    provisional.write(out)
    return provisional.to_json()
