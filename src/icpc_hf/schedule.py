"""Per-sample, per-epoch compression levels, grouped so that every batch holds one level.

Each sample draws its own level each epoch from (seed, epoch); samples of one level are then packed into
chunks of exactly `chunk_size` indices (a batch, or one batch per rank under data parallelism), so a batch
never pads a small input up to a larger one. What one level leaves over (fewer than a chunk) is pooled,
sorted by level and re-chunked; such a chunk takes the (lower) median level of its members. The plan is a pure
function of its arguments: every rank, and a resumed run, computes the same one.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from .config import SCHEDULES, ICPCConfig

logger = logging.getLogger(__name__)


@dataclass
class BatchContext:
    """What the sampler tells the collator about the batch being collated, and what the collator reports back."""

    level: float
    tokens: int = 0
    full_tokens: int = 0
    samples: int = 0


_CURRENT_BATCH: contextvars.ContextVar[BatchContext | None] = contextvars.ContextVar("icpc_batch", default=None)


def current_batch() -> BatchContext | None:
    return _CURRENT_BATCH.get()


@dataclass
class EpochPlan:
    order: np.ndarray
    """Dataset indices in the order they are served."""
    chunk_levels: np.ndarray
    """Level of each chunk of `chunk_size` consecutive indices of `order` (the last chunk may be shorter)."""
    sample_levels: np.ndarray
    """Level each dataset index is served at this epoch (after leftovers are pooled)."""
    chunk_size: int


def draw_levels(
    num_samples: int, levels: Sequence[float], weights: Sequence[float] | None, seed: int, epoch: int
) -> np.ndarray:
    """The level each sample draws this epoch: reproducible from (seed, epoch), new each epoch."""
    rng = np.random.default_rng([seed, epoch, 0])
    probabilities = None
    if weights is not None:
        probabilities = np.asarray(weights, dtype=float) / float(np.sum(weights))
    return np.asarray(levels, dtype=float)[rng.choice(len(levels), size=num_samples, p=probabilities)]


RESIZING_FULL_SIZE_SHARE = 0.2
"""Progressive resizing trains the last fifth of the epochs at full size, as MosaicML Composer's does by default."""


def epoch_distribution(
    levels: Sequence[float], weights: Sequence[float] | None, schedule: str, epoch: int, num_epochs: int | None,
    uncompressed_last_epochs: int = 0,
) -> tuple[list[float], list[float] | None]:
    """The levels (and weights) an epoch draws from under a schedule over the run.

    `constant`: every epoch alike. `progressive`: the smallest level allowed rises with training, one level per
    equal share of the epochs, so a run ends on the larger levels. `progressive_resizing` (the peer, not ICPC):
    one level for every sample of an epoch, growing from the smallest to full size, full size for the last fifth.
    Without a known number of epochs a schedule cannot move, and the epoch draws from every level.
    """
    levels = list(levels)
    weights = None if weights is None else list(weights)
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown schedule {schedule!r}: use one of {', '.join(SCHEDULES)}.")
    if num_epochs is None or num_epochs < 1:
        return levels, weights
    if uncompressed_last_epochs and epoch >= num_epochs - uncompressed_last_epochs:
        return [1.0], None
    progress = min(1.0, max(0.0, epoch / num_epochs))
    if schedule == "progressive":
        if weights is not None:  # the floor rises through the levels that are drawn at all
            drawn = [(lv, w) for lv, w in zip(levels, weights) if w > 0]
            levels, weights = [lv for lv, _ in drawn], [w for _, w in drawn]
        first = min(len(levels) - 1, int(progress * len(levels)))
        return levels[first:], None if weights is None else weights[first:]
    if schedule == "progressive_resizing":
        ramp = progress / (1.0 - RESIZING_FULL_SIZE_SHARE)
        target = levels[0] + (1.0 - levels[0]) * ramp
        return [max(lv for lv in levels if lv <= target + 1e-9) if ramp < 1 else levels[-1]], None
    return levels, weights


def weights_for_speedup(costs: Sequence[float], target_speedup: float) -> list[float]:
    """Level weights whose expected cost is 1 / target_speedup of a full-size sample, as even as that allows.

    Of all the weightings meeting the budget, the one of highest entropy: w_i proportional to exp(-t * cost_i),
    with t found by bisection (the mean cost falls monotonically in t). `costs` are per level, as fractions of a
    full-size sample (the last, full size, is 1).
    """
    costs = np.asarray(costs, dtype=float)
    if target_speedup < 1.0:
        raise ValueError(
            f"`target_speedup` must be at least 1 (1 = no saving), got {target_speedup}: it is the training cost of a "
            "full-size sample divided by the mean cost of a compressed one."
        )
    budget = 1.0 / target_speedup
    cheapest = float(costs.min())
    if budget < cheapest - 1e-9:
        raise ValueError(
            f"`target_speedup={target_speedup:g}` needs every sample below {budget:.3f} of the full cost, but the "
            f"smallest level costs {cheapest:.3f} (at most {1 / cheapest:.2f}x): lower the target or add a smaller "
            "level (`min_level` or `levels`)."
        )

    def weights_at(temperature: float) -> np.ndarray:
        logits = -temperature * costs
        logits -= logits.max()
        values = np.exp(logits)
        return values / values.sum()

    if budget >= float(costs.mean()):  # cheaper than needed when drawn evenly: lean towards the large levels
        low, high = -1e4, 0.0
    else:
        low, high = 0.0, 1e4
    for _ in range(200):
        middle = (low + high) / 2
        if float(weights_at(middle) @ costs) > budget:
            low = middle
        else:
            high = middle
    return [round(float(w), 6) for w in weights_at((low + high) / 2)]


MEGABATCH_CHUNKS = 50


def group_by_length(members: np.ndarray, lengths: np.ndarray, chunk_size: int) -> np.ndarray:
    """Sort shuffled members by length within windows of 50 chunks, as Transformers' LengthGroupedSampler
    does: batches hold similar lengths (little padding) while the order stays random across windows."""
    window = chunk_size * MEGABATCH_CHUNKS
    parts = [members[i : i + window] for i in range(0, len(members), window)]
    return np.concatenate([p[np.argsort(-lengths[p], kind="stable")] for p in parts]) if parts else members


def plan_epoch(
    drawn: np.ndarray, chunk_size: int, seed: int, epoch: int, shuffle: bool = True,
    lengths: np.ndarray | None = None,
) -> EpochPlan:
    """Order the samples so that each chunk of `chunk_size` consecutive indices shares one level (and, given
    `lengths`, similar lengths)."""
    if chunk_size < 1:
        raise ValueError(f"`chunk_size` must be at least 1, got {chunk_size}.")
    num_samples = len(drawn)
    rng = np.random.default_rng([seed, epoch, 1])
    order = rng.permutation(num_samples) if shuffle else np.arange(num_samples)
    chunks: list[np.ndarray] = []
    leftovers: list[np.ndarray] = []
    for level in np.unique(drawn):
        members = order[drawn[order] == level]
        if lengths is not None:
            members = group_by_length(members, lengths, chunk_size)
        whole = len(members) // chunk_size * chunk_size
        chunks.extend(np.split(members[:whole], whole // chunk_size) if whole else [])
        leftovers.append(members[whole:])
    pool = np.concatenate(leftovers) if leftovers else np.zeros(0, dtype=int)
    pool = pool[np.argsort(drawn[pool], kind="stable")]
    pooled = [pool[i : i + chunk_size] for i in range(0, len(pool), chunk_size)]
    tail = pooled.pop() if pooled and len(pooled[-1]) < chunk_size else None
    chunks.extend(pooled)
    chunk_order = rng.permutation(len(chunks)) if shuffle else np.arange(len(chunks))
    chunks = [chunks[i] for i in chunk_order] + ([tail] if tail is not None else [])
    chunk_levels = np.array([np.sort(drawn[c])[(len(c) - 1) // 2] for c in chunks], dtype=float)
    served = np.concatenate(chunks) if chunks else np.zeros(0, dtype=int)
    sample_levels = np.empty(num_samples, dtype=float)
    for chunk, level in zip(chunks, chunk_levels):
        sample_levels[chunk] = level
    return EpochPlan(served.astype(np.int64), chunk_levels, sample_levels, chunk_size)


class ICPCSampler(Sampler[int]):
    """A sampler serving indices in level-homogeneous chunks; pair it with `bind` on the collate function.

    With `lengths` (tokens per sample, for text), each level's samples are also grouped by length, so that the
    pruning turns into shorter padded batches.

    Use it as the DataLoader's `sampler` with `batch_size = chunk_size // num_replicas` (Accelerate then gives
    each rank one batch of every chunk, so all ranks run the same level at each step). `ICPCCallback` installs
    it into a Trainer's dataloader by itself.
    """

    def __init__(
        self,
        num_samples: int,
        chunk_size: int,
        icpc: ICPCConfig,
        num_epochs: int | None = None,
        shuffle: bool = True,
        lengths: Sequence[int] | None = None,
    ):
        if not icpc.levels:
            raise ValueError("The ICPC settings have no levels yet: call `patch_model(model, icpc)` first.")
        self.num_samples = int(num_samples)
        self.chunk_size = int(chunk_size)
        self.icpc = icpc
        self.num_epochs = num_epochs
        self.shuffle = shuffle
        self.lengths = None if lengths is None else np.asarray(lengths)
        if self.lengths is not None and len(self.lengths) != self.num_samples:
            raise ValueError(f"{len(self.lengths)} lengths for {self.num_samples} samples: give one length per sample.")
        self.epoch = 0
        self.current: BatchContext | None = None
        if icpc.schedule != "constant" and num_epochs is None:
            logger.warning(
                "The ICPC schedule %r moves over the run, but this sampler was not told how many epochs there are: "
                "every epoch draws from every level. Pass `ICPCSampler(..., num_epochs=N)` (the Trainer's callback "
                "does), or set `ICPCConfig(schedule='constant')`.", icpc.schedule,
            )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def levels_for_epoch(self, epoch: int) -> np.ndarray:
        icpc = self.icpc
        levels, weights = epoch_distribution(icpc.levels, icpc.level_weights, icpc.schedule, epoch, self.num_epochs,
                                             icpc.uncompressed_last_epochs)
        return draw_levels(self.num_samples, levels, weights, icpc.seed, epoch)

    def plan(self, epoch: int | None = None) -> EpochPlan:
        epoch = self.epoch if epoch is None else epoch
        return plan_epoch(
            self.levels_for_epoch(epoch), self.chunk_size, self.icpc.seed, epoch, self.shuffle, self.lengths
        )

    def __iter__(self) -> Iterator[int]:
        plan = self.plan()
        for start in range(0, len(plan.order), self.chunk_size):
            self.current = BatchContext(level=float(plan.chunk_levels[start // self.chunk_size]))
            yield from plan.order[start : start + self.chunk_size].tolist()
        self.current = None

    def __len__(self) -> int:
        return self.num_samples

    def bind(self, collate_fn: Callable, on_batch: Callable[[BatchContext], None] | None = None) -> "LevelledCollate":
        """A collate function that compresses each batch to the level this sampler served it at."""
        return LevelledCollate(self, collate_fn, on_batch)


class LevelledCollate:
    """Runs a collate function inside the context of the sampler's current chunk.

    A DataLoader collates a batch right after drawing its indices, so the sampler's current chunk is the
    batch's chunk; this holds in the main process, which is why DataLoader workers are refused.
    """

    def __init__(self, sampler: ICPCSampler, collate_fn: Callable, on_batch: Callable | None = None):
        self.sampler = sampler
        self.collate_fn = collate_fn
        self.on_batch = on_batch

    def __call__(self, features: list[Any]) -> Any:
        import torch.utils.data

        if torch.utils.data.get_worker_info() is not None:
            raise ValueError(
                "ICPC batches are collated in the main process: set `dataloader_num_workers=0` (decode images "
                "or audio in `datasets.map` or in the dataset instead)."
            )
        current = self.sampler.current
        context = BatchContext(level=current.level if current is not None else 1.0)
        token = _CURRENT_BATCH.set(context)
        try:
            batch = self.collate_fn(features)
        finally:
            _CURRENT_BATCH.reset(token)
        if self.on_batch is not None:
            self.on_batch(context)
        return batch
