"""The level a training batch was drawn at, as the training collate function (`LevelledCollate`) tells the modality
that collates it: text draws which words to prune for a training batch, and prunes exactly anywhere else."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass
class BatchContext:
    """What the levelled collate function tells the collator about the batch it is collating."""

    level: float


CURRENT_BATCH: contextvars.ContextVar[BatchContext | None] = contextvars.ContextVar("icpc_batch", default=None)


def current_batch() -> BatchContext | None:
    """The training batch being collated, or None outside one (evaluation, inference)."""
    return CURRENT_BATCH.get()
