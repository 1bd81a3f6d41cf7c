"""Every training batch's compression level: a pure function of the settings, the training stage and the batch.

A collate function sees the samples of a batch, never its indices, and in DataLoader workers it runs in another
process than the sampler. So the level is decided where the batch is collated, from what that process knows: the
pass (epoch), the batch's position in the pass, and the stage of training the batch belongs to (its epoch for a
map-style dataset, its optimizer step for a stream). Every rank, every worker and a resumed run compute the same
level for the same batch, and every sample of a batch shares it, so no batch pads a small input up to a larger one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch.utils.data

from ..config import ICPCConfig
from ..drawn_level import CURRENT_BATCH, BatchContext
from .schedules import Distribution, Schedule, schedule_class, schedule_for
from .settings import check_training_settings

logger = logging.getLogger(__name__)


def stage_distribution(
    schedule: Schedule,
    levels: Sequence[float],
    weights: Sequence[float] | None,
    stage: int,
    num_stages: int | None,
    uncompressed_last_epochs: int = 0,
) -> Distribution:
    """The levels (and weights) a training stage draws from: the uncompressed last epochs, which every schedule
    shares, else the schedule's own (training/schedules/). Without a known number of stages a schedule that moves
    with the clock cannot move, and the stage draws from every level."""
    levels = list(levels)
    weights = None if weights is None else list(weights)
    known = num_stages is not None and num_stages >= 1
    if known and uncompressed_last_epochs and stage >= num_stages - uncompressed_last_epochs:
        return [1.0], None
    if schedule.moves_with_the_clock and not known:
        return levels, weights
    progress = min(1.0, max(0.0, stage / num_stages)) if known else 0.0
    return schedule.distribution(levels, weights, stage, progress)


def epoch_distribution(
    levels: Sequence[float],
    weights: Sequence[float] | None,
    schedule: str,
    epoch: int,
    num_epochs: int | None,
    uncompressed_last_epochs: int = 0,
    anchors: Sequence[float] = (),
    floor: int = 0,
) -> Distribution:
    """`stage_distribution` of the schedule named `schedule`, as a pure function of its inputs: `anchors` are the
    cascade's levels (`anchored`), `floor` the epoch's floor (`adaptive`)."""
    drawn = schedule_class(schedule)(ICPCConfig(cascade_levels=list(anchors) or None))
    drawn.load_state_dict({"epoch_floors": {epoch: floor}})
    return stage_distribution(drawn, levels, weights, epoch, num_epochs, uncompressed_last_epochs)


class LevelPlan:
    """The level of every training batch, drawn from the epoch's levels and weights (`epoch_distribution`) with a
    generator seeded by (seed, pass, position): reproducible, new for every batch, and the same wherever computed.

    `num_epochs` is the length of the run in the unit the schedule moves in: epochs for a dataset with a length,
    optimizer steps for a stream, which has no epochs to count (ICPCCallback passes the Trainer's `max_steps`).
    """

    def __init__(self, icpc: ICPCConfig, num_epochs: int | None = None):
        icpc.check_resolved("levels")  # levels are enough: a plan can be made before the model is patched
        self.icpc = check_training_settings(icpc)
        self.schedule = schedule_for(icpc)
        """The schedule (training/schedules/), holding what it needs to move: its state goes into checkpoints."""
        self.num_stages = num_epochs
        if self.schedule.moves_with_the_clock and num_epochs is None:
            logger.warning(
                "The ICPC schedule %r moves over the run, but the level plan was not told how long the run is: every "
                "batch draws from every level. Pass the number of epochs (the Trainer's callback does), or set "
                "`ICPCConfig(schedule='constant')`.",
                self.schedule.name,
            )

    def distribution(self, stage: int) -> Distribution:
        icpc = self.icpc
        return stage_distribution(
            self.schedule, icpc.levels, icpc.level_weights, stage, self.num_stages, icpc.uncompressed_last_epochs
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
        token = CURRENT_BATCH.set(BatchContext(level=self.level_at(self.next_position())))
        try:
            return self.collate_fn(features)
        finally:
            CURRENT_BATCH.reset(token)
