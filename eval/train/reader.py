"""Train the answer model's span reader (`service/answers/reader.py`) from train splits only.

The bundled all-MiniLM-L6-v2 as a BERT question-answering model: low-rank adapters on every
linear layer of the encoder and a span head (start / end logit per token) are trained on the
windows of `reader_data` (SQuAD's train articles with SQuAD 2.0's unanswerable questions,
reuters-qa train with the service's own hard negatives, WikiQA train's answer phrases). The loss
is SQuAD 2.0's: cross-entropy of the answer's first and last token, the first token standing
for "no answer here". The epoch is chosen on reuters-qa dev windows (the mean of the share of
answer windows whose span matches `accept` and the AUC of the span-over-null score between
answer and no-answer windows). Only the trained tensors ship (float16).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.train.loop import optimizer_and_schedule, step
from lede.eval.train.reader_data import ReaderExample
from lede.indexer.encoders.embedder import resolve_model_path
from lede.indexer.encoders.light_encoder import load_tokenizer
from lede.service.answers.reader import (
    ReadSpan,
    best_span,
    reader_input,
    token_labels,
    torch_inputs,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    seed: int = 13
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 5e-4
    warmup: float = 0.1
    lora_rank: int = 16
    lora_alpha: float = 32.0
    max_length: int = 192
    # reuters-qa train examples are repeated this many times in each epoch (the target domain).
    news_repeats: int = 2
    # Windows holding the answer per SQuAD question (the candidate's, its neighbours').
    squad_positives: int = 1
    max_questions: int | None = None  # for a quick run (tests); None = all


def tokenizer_for(base_model: str, max_length: int) -> Any:
    return load_tokenizer(
        Path(resolve_model_path(base_model)), max_length=max_length, pairs="only_second"
    )


def encode(tokenizer: Any, examples: Sequence[ReaderExample]) -> tuple[list[Any], list[int]]:
    """The encoded pairs, and each one's text offset in its second segment."""
    seconds = [reader_input(e.title, e.text) for e in examples]
    encodings = tokenizer.encode_batch(
        [(e.question, second) for e, (second, _) in zip(examples, seconds, strict=True)]
    )
    return encodings, [offset for _, offset in seconds]


def load_reader(base_model: str, weights: Path | None, lora_scale: float) -> Any:
    """The base model as a BERT question-answering model, trained tensors laid over it."""
    from lede.service.answers.model import load_adapted

    return load_adapted("question-answering", base_model, weights, lora_scale)


class TorchReader:
    """The reader being trained (or loaded), read like the service reads it."""

    def __init__(self, model: Any, tokenizer: Any):
        self.model, self.tokenizer = model, tokenizer

    def read(self, question: str, windows: Sequence[tuple[str, str]]) -> list[ReadSpan | None]:
        import torch

        if not windows:
            return []
        examples = [ReaderExample(question, t, x, None, "") for t, x in windows]
        encodings, offsets = encode(self.tokenizer, examples)
        self.model.eval()
        with torch.inference_mode():
            output = self.model(**torch_inputs(encodings))
        starts = output.start_logits.double().numpy()
        ends = output.end_logits.double().numpy()
        return [
            best_span(starts[i], ends[i], e.offsets, e.sequence_ids, offsets[i])
            for i, e in enumerate(encodings)
        ]


def dev_figures(
    reader: TorchReader, examples: Sequence[ReaderExample], accepts: Any
) -> dict[str, float]:
    """On dev windows: the share of answer windows whose span is accepted, and the AUC of the
    span-over-null score between answer and no-answer windows."""
    from sklearn.metrics import roc_auc_score

    right, evidence, labels = [], [], []
    by_question: dict[str, list[ReaderExample]] = {}
    for example in examples:
        by_question.setdefault(example.question, []).append(example)
    for question, group in by_question.items():
        spans = reader.read(question, [(e.title, e.text) for e in group])
        for example, span in zip(group, spans, strict=True):
            score = span.evidence if span else -100.0
            evidence.append(score)
            labels.append(example.answer is not None)
            if example.answer is not None:
                text = example.text[span.start : span.end] if span else ""
                right.append(bool(accepts(question, text)))
    auc = float(roc_auc_score(labels, evidence)) if len(set(labels)) == 2 else 0.0
    return {
        "span_right": round(float(np.mean(right)), 4) if right else 0.0,
        "null_auc": round(auc, 4),
        "windows": len(examples),
    }


def train_reader(
    examples: list[ReaderExample],
    dev: list[ReaderExample],
    accepts: Any,
    settings: ReaderSettings,
    base_model: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train; returns the best epoch's trained tensors (named as the base model names the layer
    they adapt) and the training record."""
    import torch

    from lede.eval.train.scorer import _add_lora, _lora_state

    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    tokenizer = tokenizer_for(base_model, settings.max_length)
    model = load_reader(base_model, None, 0.0)
    scale = settings.lora_alpha / settings.lora_rank
    _add_lora(model, settings.lora_rank, scale)
    prefixes = ("qa_outputs.",)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = ".lora_" in name or name.startswith(prefixes)
    parameters = [p for p in model.parameters() if p.requires_grad]
    news = [e for e in examples if e.source == "news"]
    pool = examples + news * (settings.news_repeats - 1)
    labelled = _labelled(tokenizer, pool)
    logger.info(
        "reader: %d windows (%d dropped: answer cut off)", len(labelled), len(pool) - len(labelled)
    )
    optimizer, scheduler = optimizer_and_schedule(
        parameters,
        settings.learning_rate,
        examples=len(labelled),
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        warmup=settings.warmup,
    )
    rng = random.Random(settings.seed)
    reader = TorchReader(model, tokenizer)
    history: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any]] | None = None
    started = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        losses: list[float] = []
        for batch in _batches(labelled, settings.batch_size, rng):
            encodings, _ = encode(tokenizer, [b[0] for b in batch])
            output = model(**torch_inputs(encodings))
            starts = torch.tensor([b[1][0] for b in batch])
            ends = torch.tensor([b[1][1] for b in batch])
            loss = (
                torch.nn.functional.cross_entropy(output.start_logits, starts)
                + torch.nn.functional.cross_entropy(output.end_logits, ends)
            ) / 2
            step(
                loss,
                parameters,
                optimizer,
                scheduler,
                losses,
                name="reader",
                epoch=epoch,
                started=started,
            )
        figures = dev_figures(reader, dev, accepts)
        history.append(
            {
                "epoch": epoch,
                "loss": round(float(np.mean(losses)), 4),
                "reuters_qa_dev_windows": figures,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        logger.info("reader epoch %d: %s", epoch, history[-1])
        value = (figures["span_right"] + figures["null_auc"]) / 2
        if best is None or value > best[0]:
            state = {
                name: tensor.detach().clone()
                for name, tensor in _lora_state(model.state_dict()).items()
                if ".lora_" in name or name.startswith(prefixes)
            }
            best = (value, state)
    assert best is not None
    record = {
        "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
        "windows": len(labelled),
        "sources": {s: sum(e.source == s for e in pool) for s in sorted({e.source for e in pool})},
        "epochs": history,
        "chosen_epoch": max(
            history,
            key=lambda h: (
                h["reuters_qa_dev_windows"]["span_right"] + h["reuters_qa_dev_windows"]["null_auc"]
            ),
        )["epoch"],
        "lora_scale": scale,
    }
    return best[1], record


Labelled = tuple[ReaderExample, tuple[int, int], int]  # example, token rows, token count


def _labelled(tokenizer: Any, examples: Sequence[ReaderExample]) -> list[Labelled]:
    """Each example with its answer's token rows (padding at the end does not move them)."""
    result = []
    for at in range(0, len(examples), 512):
        chunk = examples[at : at + 512]
        encodings, offsets = encode(tokenizer, chunk)
        for example, encoding, offset in zip(chunk, encodings, offsets, strict=True):
            labels = token_labels(encoding.offsets, encoding.sequence_ids, offset, example.answer)
            if labels is not None:
                result.append((example, labels, sum(encoding.attention_mask)))
    return result


def _batches(labelled: list[Labelled], size: int, rng: random.Random) -> list[list[Labelled]]:
    """Shuffled batches of similar length (less padding), in a shuffled order."""
    shuffled = labelled[:]
    rng.shuffle(shuffled)
    pool = size * 50
    batches = []
    for start in range(0, len(shuffled), pool):
        block = sorted(shuffled[start : start + pool], key=lambda e: e[2])
        batches += [block[i : i + size] for i in range(0, len(block), size)]
    rng.shuffle(batches)
    return batches


def reader_training_data(
    datasets: Path, answerer: Any, settings: ReaderSettings
) -> tuple[list[ReaderExample], list[ReaderExample], Any]:
    """Training windows (train splits only), reuters-qa dev windows to choose the epoch, and
    the dev judge `accepts(question, span)`; with `max_questions`, that many of each source."""
    from lede.eval.news_qa import load_news_questions, story_texts, story_titles
    from lede.eval.train.reader_data import (
        hard_examples,
        news_examples,
        squad_examples,
        wikiqa_examples,
    )

    rng = random.Random(settings.seed)
    max_questions = settings.max_questions
    corpus = datasets / "reuters21578" / "corpus.jsonl"
    texts, titles = story_texts(corpus), story_titles(corpus)
    train = load_news_questions(datasets / "reuters-qa" / "train.jsonl")[:max_questions]
    dev = load_news_questions(datasets / "reuters-qa" / "dev.jsonl")[:max_questions]
    examples = (
        squad_examples(datasets, rng, positives=settings.squad_positives, limit=max_questions)
        + wikiqa_examples(datasets, rng, limit=max_questions)
        + news_examples(train, texts, titles, rng)
        + [
            ReaderExample(e.question, e.title, e.text, e.answer, "news")
            for e in hard_examples(answerer, train)
        ]
    )
    dev_examples = news_examples([q for q in dev if q.answerable], texts, titles, rng)
    by_question = {q.question: q for q in dev}
    return examples, dev_examples, lambda question, span: by_question[question].accepts(span)


def build_reader(
    out: Path, datasets: Path, settings: ReaderSettings, answerer: Any
) -> dict[str, Any]:
    """Train the reader and write it into the answer model folder `out` (its scorer.json gains
    the reader's settings and training record)."""
    import dataclasses

    from safetensors.torch import save_file

    from lede.service.answers.model import ScorerConfig
    from lede.service.answers.reader import READER_WEIGHTS, ReaderConfig

    examples, dev, accepts = reader_training_data(datasets, answerer, settings)
    config = ScorerConfig.read(out)
    state, record = train_reader(examples, dev, accepts, settings, config.base_model)
    save_file(
        {name: tensor.half().contiguous() for name, tensor in state.items()},
        str(out / READER_WEIGHTS),
    )
    reader = ReaderConfig(max_length=settings.max_length, lora_scale=record.pop("lora_scale"))
    training = dict(config.training) | {"reader": record}
    config = dataclasses.replace(config, reader=reader, training=training)
    config.write(out)
    return record
