"""Reliability of a confidence: the expected calibration error, its table and its plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def calibration(
    confidences: Sequence[float], correct: Sequence[bool], buckets: int = 10
) -> dict[str, Any]:
    """Reliability table ([0, 0.1), ..., [0.9, 1]) and the expected calibration error: the
    bucket-size-weighted mean of |accuracy - mean confidence|."""
    rows = []
    values = np.asarray(confidences, dtype=np.float64)
    hits = np.asarray(correct, dtype=bool)
    error = 0.0
    for bucket in range(buckets):
        low, high = bucket / buckets, (bucket + 1) / buckets
        inside = (values >= low) & ((values < high) if bucket < buckets - 1 else (values <= high))
        count = int(inside.sum())
        if count:
            accuracy, mean = float(hits[inside].mean()), float(values[inside].mean())
            error += count / len(values) * abs(accuracy - mean)
        rows.append(
            {
                "bucket": f"[{low:.1f}, {high:.1f}{']' if bucket == buckets - 1 else ')'}",
                "count": count,
                "accuracy": round(float(hits[inside].mean()), 4) if count else None,
                "mean_confidence": round(float(values[inside].mean()), 4) if count else None,
            }
        )
    return {"ece": round(error, 4), "buckets": rows}


def reliability_plot(path: Path, curves: dict[str, tuple[list[float], list[bool], float]]) -> None:
    """One reliability diagram per evaluation set: accuracy against mean confidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4.6), squeeze=False)
    for axis, (name, (confidences, correct, ece)) in zip(axes[0], curves.items(), strict=True):
        table = calibration(confidences, correct)["buckets"]
        points = [(r["mean_confidence"], r["accuracy"], r["count"]) for r in table if r["count"]]
        axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        axis.plot(
            [p[0] for p in points], [p[1] for p in points], marker="o", label="Lede", color="C0"
        )
        for x, y, count in points:
            axis.annotate(str(count), (x, y), textcoords="offset points", xytext=(4, -10))
        axis.set_title(f"{name}\nECE {ece:.3f}, {len(confidences)} questions")
        axis.set_xlabel("confidence (bucket mean)")
        axis.set_ylabel("share right")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.legend(loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
