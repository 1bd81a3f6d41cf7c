"""Every training batch's compression level: a pure function of the settings, the training stage and the batch.

A collate function sees the samples of a batch, never its indices, and in DataLoader workers it runs in another
process than the sampler. So the level is decided where the batch is collated, from what that process knows: the
pass (epoch), the batch's position in the pass, and the stage of training the batch belongs to (its epoch for a
map-style dataset, its optimizer step for a stream). Every rank, every worker and a resumed run compute the same
level for the same batch, and every sample of a batch shares it, so no batch pads a small input up to a larger one.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch.utils.data

from ..config import ICPCConfig
from ..modality import DEFAULT_SCHEDULE
from .settings import SCHEDULES

logger = logging.getLogger(__name__)


@dataclass
class BatchContext:
    """What the levelled collate function tells the collator about the batch it is collating."""

    level: float


_CURRENT_BATCH: contextvars.ContextVar[BatchContext | None] = contextvars.ContextVar("icpc_batch", default=None)


def current_batch() -> BatchContext | None:
    return _CURRENT_BATCH.get()


RESIZING_FULL_SIZE_SHARE = 0.2
"""Progressive resizing trains the last fifth of the epochs at full size, as MosaicML Composer's does by default."""


def schedule_name(icpc: ICPCConfig) -> str:
    """The schedule settings train with: their own, or the grids' default for settings not resolved for a model."""
    return icpc.schedule or DEFAULT_SCHEDULE


def drawn_levels(levels: Sequence[float], weights: Sequence[float] | None) -> tuple[list[float], list[float] | None]:
    """The levels (and their weights) that are drawn at all: those of positive weight, every level without weights."""
    if weights is None:
        return list(levels), None
    drawn = [(lv, w) for lv, w in zip(levels, weights) if w > 0]
    return [lv for lv, _ in drawn], [w for _, w in drawn]


def epoch_distribution(
    levels: Sequence[float],
    weights: Sequence[float] | None,
    schedule: str,
    epoch: int,
    num_epochs: int | None,
    uncompressed_last_epochs: int = 0,
    anchors: Sequence[float] = (),
    floor: int = 0,
) -> tuple[list[float], list[float] | None]:
    """The levels (and weights) an epoch draws from under a schedule over the run.

    `constant`: every epoch alike. `progressive`: the smallest level allowed rises with training, one level per
    equal share of the epochs, so a run ends on the larger levels. `anchored`: as `progressive`, but the levels in
    `anchors` (the cascade's) are drawn in every epoch: a progressive run forgets its small levels, and a cascade
    then has nothing cheap to answer with. `bookends`: every epoch, each batch at the smallest level drawn or at the
    largest (full size), a fair coin: the two levels a two-step cascade serves stay trained to the end.
    `progressive_bookends`: `progressive` until its last stage (where it draws full size alone), then `bookends`:
    the run trains as `progressive` does, batch for batch, and its end brings back the smallest level. `adaptive`:
    the levels from the `floor`-th up, where the evaluations during training move the floor (`training.adaptive`).
    `progressive_resizing` (the peer, not ICPC): one level for every sample of an epoch, growing from the smallest to
    full size, full size for the last fifth.
    Without a known number of epochs a clock-driven schedule cannot move, and the epoch draws from every level.
    """
    levels = list(levels)
    weights = None if weights is None else list(weights)
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {schedule!r}: use one of {', '.join(SCHEDULES)}.")
    known = num_epochs is not None and num_epochs >= 1
    if known and uncompressed_last_epochs and epoch >= num_epochs - uncompressed_last_epochs:
        return [1.0], None
    if schedule == "bookends":
        drawn, _ = drawn_levels(levels, weights)
        return sorted({drawn[0], drawn[-1]}), None
    if schedule != "adaptive" and not known:
        return levels, weights
    progress = min(1.0, max(0.0, epoch / num_epochs)) if known else 0.0
    if schedule in ("progressive", "anchored", "adaptive", "progressive_bookends"):
        levels, weights = drawn_levels(levels, weights)  # the floor rises through the levels drawn at all
        rank = floor if schedule == "adaptive" else int(progress * len(levels))
        first = min(len(levels) - 1, max(0, int(rank)))
        if schedule == "progressive_bookends" and first == len(levels) - 1:
            return sorted({levels[0], levels[-1]}), None
        kept = [
            i
            for i, lv in enumerate(levels)
            if i >= first or (schedule == "anchored" and any(abs(lv - a) < 1e-9 for a in anchors))
        ]
        return [levels[i] for i in kept], None if weights is None else [weights[i] for i in kept]
    if schedule == "progressive_resizing":
        ramp = progress / (1.0 - RESIZING_FULL_SIZE_SHARE)
        target = levels[0] + (1.0 - levels[0]) * ramp
        return [max(lv for lv in levels if lv <= target + 1e-9) if ramp < 1 else levels[-1]], None
    return levels, weights


class LevelPlan:
    """The level of every training batch, drawn from the epoch's levels and weights (`epoch_distribution`) with a
    generator seeded by (seed, pass, position): reproducible, new for every batch, and the same wherever computed.

    `num_epochs` is the length of the run in the unit the schedule moves in: epochs for a dataset with a length,
    optimizer steps for a stream, which has no epochs to count (ICPCCallback passes the Trainer's `max_steps`).
    """

    def __init__(self, icpc: ICPCConfig, num_epochs: int | None = None):
        if not icpc.levels:
            raise ValueError("The ICPC settings have no levels yet: call `patch_model(model, icpc)` first.")
        self.icpc = icpc
        self.schedule = schedule_name(icpc)
        self.num_stages = num_epochs
        self.floors: dict[int, int] = {}
        """`adaptive`: the floor each epoch draws from (ICPCCallback sets it as the epoch begins); 0 otherwise."""
        if self.schedule not in ("constant", "adaptive", "bookends") and num_epochs is None:
            logger.warning(
                "The ICPC schedule %r moves over the run, but the level plan was not told how long the run is: every "
                "batch draws from every level. Pass the number of epochs (the Trainer's callback does), or set "
                "`ICPCConfig(schedule='constant')`.",
                self.schedule,
            )

    def distribution(self, stage: int) -> tuple[list[float], list[float] | None]:
        icpc = self.icpc
        return epoch_distribution(
            icpc.levels,
            icpc.level_weights,
            self.schedule,
            stage,
            self.num_stages,
            icpc.uncompressed_last_epochs,
            icpc.cascade_levels or (),
            self.floors.get(stage, 0),
        )

    def level(self, stage: int, epoch: int, position: int) -> float:
        """The level of the batch at `position` of pass `epoch`, which belongs to training stage `stage`."""
        levels, weights = self.distribution(stage)
        if len(levels) == 1:
            return float(levels[0])
        probabilities = None if weights is None else np.asarray(weights, dtype=float) / float(np.sum(weights))
        rng = np.random.default_rng([self.icpc.seed, epoch, position])
        return float(levels[rng.choice(len(levels), p=probabilities)])

    def epoch_levels(self, epoch: int, num_batches: int) -> list[float]:
        """The levels of the first `num_batches` batches of an epoch of a dataset with a length (stage = epoch)."""
        return [self.level(epoch, epoch, position) for position in range(num_batches)]

    def bind(self, collate_fn: Callable, group: int = 1) -> LevelledCollate:
        """A collate function that compresses each batch to this plan's level for it."""
        return LevelledCollate(self, collate_fn, group)


class LevelledCollate:
    """Runs a collate function (an ICPCDataCollator, or the user's function that calls one) with the batch's level.

    The batch's position in the pass is counted where the batch is collated: in the main process, the n-th call
    of the pass; in DataLoader worker `w` of `W`, its n-th call is the batch at `n * W + w`, since a DataLoader
    hands out a map-style dataset's batches to its workers in turn (a stream's workers each read their own shards,
    and the same formula gives every batch its own position). Call `set_epoch` before each pass (the Trainer's
    callback does): workers start from the state it sets, so they must not persist across passes.

    `group` consecutive batches share one level: Accelerate's batch dispatching concatenates one batch per process
    into each step's batch, which it then splits across processes.
    """

    def __init__(self, plan: LevelPlan, collate_fn: Callable, group: int = 1):
        self.plan = plan
        self.collate_fn = collate_fn
        self.group = max(1, int(group))
        self.epoch = 0
        self.first_position = 0
        """Batches of the pass not collated here: those a resumed run skips without loading them."""
        self.first_step: int | None = None
        """For a stream: the optimizer step the pass began at (the stage is the step, not the epoch)."""
        self.accumulation = 1
        """Batches per optimizer step, to find a stream batch's step."""
        self._collated = 0

    def set_epoch(
        self, epoch: int, first_position: int = 0, first_step: int | None = None, accumulation: int = 1
    ) -> None:
        self.epoch, self.first_position, self.first_step = int(epoch), int(first_position), first_step
        self.accumulation = max(1, int(accumulation))
        self._collated = 0

    def next_position(self) -> int:
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        position = self.first_position + self._collated * workers + worker
        self._collated += 1
        return position

    def level_at(self, position: int) -> float:
        slot = position // self.group
        stage = self.epoch if self.first_step is None else self.first_step + slot // self.accumulation
        return self.plan.level(stage, self.epoch, slot)

    def __call__(self, features: list[Any]) -> Any:
        token = _CURRENT_BATCH.set(BatchContext(level=self.level_at(self.next_position())))
        try:
            return self.collate_fn(features)
        finally:
            _CURRENT_BATCH.reset(token)
