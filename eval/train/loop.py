"""What training the scorer and the reader share: AdamW with a linear warm-up and decay, and
one optimizer step (clipped gradients, progress logged every 100 steps)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def optimizer_and_schedule(
    parameters: list[Any],
    learning_rate: float,
    *,
    examples: int,
    batch_size: int,
    epochs: int,
    warmup: float,
) -> tuple[Any, Any]:
    """AdamW (weight decay 0.01) and a schedule rising over the first `warmup` share of the
    steps, then falling linearly to zero at the last."""
    import torch

    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.01)
    steps = epochs * math.ceil(examples / batch_size)
    rising = max(1, int(steps * warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / rising, max(0.0, (steps - step) / max(1, steps - rising))),
    )
    return optimizer, scheduler


def step(
    loss: Any,
    parameters: list[Any],
    optimizer: Any,
    scheduler: Any,
    losses: list[float],
    *,
    name: str,
    epoch: int,
    started: float,
) -> None:
    """Back-propagate `loss`, clip the gradients to norm 1, step, and record the loss."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    losses.append(float(loss))
    if len(losses) % 100 == 0:
        logger.info(
            "%s epoch %d step %d loss %.4f (%.0f s)",
            name,
            epoch,
            len(losses),
            float(np.mean(losses[-100:])),
            time.perf_counter() - started,
        )
