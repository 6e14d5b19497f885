"""`lede train answers`: rebuild the shipped answer model from public train and dev data, seeded,
in one command (about 2 hours on two CPU cores; `--stages` runs part of it).

1. `scorer` (`train.scorer`): the sentence scorer, a cross-encoder with low-rank adapters, from
   WikiQA and TrecQA train (epoch chosen on their dev splits).
2. `reader` (`train.reader`): the span reader, from SQuAD's train articles with SQuAD 2.0's
   unanswerable questions, reuters-qa train with the service's own hard negatives over the whole
   Reuters index, and WikiQA train's answer phrases (epoch chosen on reuters-qa dev windows).
3. `judge` (`train.judge`): the judge over the read candidates and its calibration, from
   reuters-qa train asked of the whole Reuters index; the default threshold on reuters-qa dev.

Each stage reads the model the previous stages wrote in `--out`. The whole Reuters-21578 index
is built once (about 15 minutes) and kept in `--cache`. With `--max-questions N` every source is
cut to N questions and the index holds only their stories (a quick run, for tests). Test splits
(SQuAD's test articles, WikiQA and TrecQA test) are never read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lede.eval.datasets import SHARED_DATASETS, BeirDataset
from lede.eval.relevance import DEFAULT_CACHE, RelevanceConfig, open_dataset_index
from lede.eval.train.reader import ReaderSettings, build_reader
from lede.eval.train.scorer import TrainSettings, train_scorer
from lede.indexer.directory import Index
from lede.service.answers.answerer import Answerer
from lede.service.answers.model import BUNDLED, WEIGHTS, AnswerModel, ScorerConfig
from lede.service.answers.reader import READER_WEIGHTS
from lede.service.engine import SearchEngine

logger = logging.getLogger(__name__)

STAGES = ("scorer", "reader", "judge")
DEFAULTS = TrainSettings()
READER_DEFAULTS = ReaderSettings()
# The service scores candidates with the cross-encoder alone: the bi-encoder term (decision 48)
# helps the scorer's ranking dev sets, where it chooses the epoch, but costs /answer 18 ms and
# changes nothing the judge measures on reuters-qa dev (decision 52). The judge stage sets it.
ANSWER_SIMILARITY_WEIGHT = 0.0


def news_index(datasets: Path, cache: Path, max_questions: int | None) -> Index:
    """The Reuters-21578 index the questions are asked of: the whole corpus (cached), or for a
    slice only the stories its questions name (built in `cache` too, keyed by content)."""
    from lede.eval.news_qa import load_news_questions

    corpus = datasets / "reuters21578"
    if max_questions is None:
        index, _ = open_dataset_index(
            BeirDataset(corpus.name, corpus, {}, {}), RelevanceConfig(), cache
        )
        return index
    wanted = {
        q.article_id
        for split in ("train", "dev")
        for q in load_news_questions(datasets / "reuters-qa" / f"{split}.jsonl")[:max_questions]
    }
    folder = Path(tempfile.mkdtemp(prefix="reuters-slice-"))
    try:
        with (corpus / "corpus.jsonl").open() as source, (folder / "corpus.jsonl").open("w") as out:
            out.writelines(line for line in source if json.loads(line)["_id"] in wanted)
        index, _ = open_dataset_index(
            BeirDataset("reuters21578-slice", folder, {}, {}), RelevanceConfig(), cache
        )
    finally:
        shutil.rmtree(folder)
    return index


def judge_stage(
    out: Path, datasets: Path, index: Index, seed: int, max_questions: int | None
) -> dict[str, Any]:
    """Fit the judge, its calibration and the threshold of the model in `out`, for the
    service's score (`ANSWER_SIMILARITY_WEIGHT`)."""
    from lede.eval.news_qa import load_news_questions, story_texts
    from lede.eval.train.judge import ask_for_judge, fit_judge

    config = dataclasses.replace(ScorerConfig.read(out), similarity_weight=ANSWER_SIMILARITY_WEIGHT)
    config.write(out)
    answerer = Answerer(SearchEngine(index), model=AnswerModel(out))
    answerer.warm_up()
    texts = story_texts(datasets / "reuters21578" / "corpus.jsonl")
    asked = {
        split: ask_for_judge(
            answerer,
            load_news_questions(datasets / "reuters-qa" / f"{split}.jsonl")[:max_questions],
            texts,
        )
        for split in ("train", "dev")
    }
    combiner, calibration, threshold, record = fit_judge(asked["train"], asked["dev"], seed)
    config = dataclasses.replace(
        config,
        combiner=combiner,
        calibration=calibration,
        threshold=threshold,
        training=dict(config.training) | {"judge": record},
    )
    config.write(out)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=BUNDLED, help="where the model is written")
    parser.add_argument("--datasets", type=Path, default=SHARED_DATASETS)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where indexes are kept")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help=f"which stages to run, in order (default: {','.join(STAGES)})",
    )
    parser.add_argument(
        "--calibrate-only", action="store_true", help="the judge stage alone (--stages judge)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help="scorer epochs")
    parser.add_argument("--reader-epochs", type=int, default=READER_DEFAULTS.epochs)
    parser.add_argument("--lora-rank", type=int, default=DEFAULTS.lora_rank)
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
    parser.add_argument("--max-questions", type=int, default=None, help="quick run on a slice")
    parser.add_argument(
        "--similarity-weight",
        type=float,
        default=DEFAULTS.similarity_weight,
        help="weight of the bi-encoder cosine in the scorer's ranking, for its epoch choice "
        "(the judge stage sets the service's: decision 52)",
    )
    args = parser.parse_args(argv)
    stages = ["judge"] if args.calibrate_only else [s for s in args.stages.split(",") if s]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        parser.error(f"--stages: {unknown[0]!r} is not one of {', '.join(STAGES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out: Path = args.out
    if "scorer" not in stages and not (out / WEIGHTS).exists():
        parser.error(f"{out} has no {WEIGHTS}: run the scorer stage first (--stages scorer,...)")
    if "reader" not in stages and "judge" in stages and not (out / READER_WEIGHTS).exists():
        parser.error(f"{out} has no {READER_WEIGHTS}: run the reader stage first")
    summary: dict[str, Any] = {}
    if "scorer" in stages:
        settings = TrainSettings(
            epochs=args.epochs,
            seed=args.seed,
            max_questions=args.max_questions,
            lora_rank=args.lora_rank,
            learning_rate=args.learning_rate,
            similarity_weight=args.similarity_weight,
        )
        summary["scorer"] = train_scorer(out, settings, args.datasets)["training"]["epochs"]
    if "reader" in stages or "judge" in stages:
        with news_index(args.datasets, args.cache, args.max_questions) as index:
            if "reader" in stages:
                answerer = Answerer(SearchEngine(index), model=AnswerModel(out))
                reader = ReaderSettings(
                    epochs=args.reader_epochs, seed=args.seed, max_questions=args.max_questions
                )
                summary["reader"] = build_reader(out, args.datasets, reader, answerer)["epochs"]
            if "judge" in stages:
                record = judge_stage(out, args.datasets, index, args.seed, args.max_questions)
                summary["judge"] = record["dev"]["at_threshold"]
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
