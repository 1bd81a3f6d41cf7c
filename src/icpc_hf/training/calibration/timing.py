"""One pass per level over the calibration samples, and each level's cost: its measured time, or its estimated FLOPs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from ...cascade import run_cascade
from .search import LevelPasses

COST_UNITS = ("time", "flops")
"""What calibration minimises: `time`, each level's cost measured on the calibration passes (what a user waits
for: small levels cost more than their FLOPs on small batches and small models), or `flops`, estimated from the
token counts (the same on every machine and every run)."""


def level_seconds(run_level, levels: Sequence[float], warmup: Any) -> list[float]:
    """Seconds each level's pass took; under torch.distributed, rank 0's, so every rank chooses the same cascade."""
    warmup()  # the first pass of a process pays for allocations and kernel selection: not a level's cost
    seconds = []
    for level in levels:
        start = time.perf_counter()
        run_level(level)
        seconds.append(time.perf_counter() - start)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        shared = torch.tensor(seconds, dtype=torch.float64)
        torch.distributed.broadcast(shared, src=0)
        seconds = shared.tolist()
    return seconds


def run_level_passes(
    model: Any,
    features: Sequence[dict[str, Any]],
    processor: Any,
    labels: Sequence[int],
    levels: Sequence[float],
    batch_size: int = 64,
    cost: str = "time",
) -> LevelPasses:
    """One pass per level (cheapest first) over `features`, each sample's cost in `cost`'s unit (`COST_UNITS`):
    what every cascade over these levels is replayed from."""
    by_level = {}

    def run_level(level: float) -> None:
        by_level[level] = run_cascade(model, features, processor, levels=[level], batch_size=batch_size)

    if cost == "time":
        first_batch = [features[i] for i in range(min(len(features), batch_size))]
        seconds = level_seconds(
            run_level,
            levels,
            lambda: run_cascade(model, first_batch, processor, levels=[levels[-1]], batch_size=batch_size),
        )
    else:
        for level in levels:
            run_level(level)
    runs = [by_level[level] for level in levels]
    levels = [run.levels[0] for run in runs]
    full_flops = runs[0].full_flops
    probabilities = [run.probabilities for run in runs]
    costs = [run.spent_flops / full_flops for run in runs]
    if cost == "time":  # rescale each level's FLOPs shares so that their mean is the level's measured time share
        per_flop = [t / float(c.mean()) for t, c in zip(seconds, costs)]
        costs = [c * (rate / per_flop[-1]) for c, rate in zip(costs, per_flop)]
    return LevelPasses(levels, probabilities, costs, torch.as_tensor(list(labels)))
