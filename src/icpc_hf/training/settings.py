"""The settings only training reads: their checks, and the level weights a training budget gives.

`ICPCConfig` declares every field, so a served `config.icpc` round-trips, but checks only what serving reads;
this module adds the checks of the training fields (`config.CHECKS`) and the weights of `target_speedup`
(`patching.RESOLVED`) when icpc_hf is imported. A served folder has no training code.
"""

from __future__ import annotations

import math
from typing import Any

from ..config import CHECKS, ICPCConfig, as_float_list
from ..patching import RESOLVED
from .budget import level_costs, weights_for_speedup
from .schedules import schedule_class


def check_training_fields(icpc: ICPCConfig) -> None:
    """Refuse level weights, schedules, budgets and epoch counts that training could not use."""
    if icpc.level_weights is not None:
        icpc.level_weights = as_float_list("level_weights", icpc.level_weights)
        if any(w < 0 or not math.isfinite(w) for w in icpc.level_weights) or sum(icpc.level_weights) <= 0:
            raise ValueError(
                f"`level_weights` must be finite, non-negative and not all zero, got {icpc.level_weights}."
            )
        if icpc.levels is not None and len(icpc.level_weights) != len(icpc.levels):
            raise ValueError(
                f"`level_weights` has {len(icpc.level_weights)} entries but `levels` has {len(icpc.levels)}: "
                "give one weight per level (levels are kept sorted ascending)."
            )
    if icpc.schedule is not None:
        schedule_class(icpc.schedule).check(icpc)
    if icpc.target_speedup is not None:
        if isinstance(icpc.target_speedup, bool) or not isinstance(icpc.target_speedup, (int, float)):
            raise TypeError(f"`target_speedup` must be a number, got {icpc.target_speedup!r}.")
        if not math.isfinite(icpc.target_speedup) or icpc.target_speedup < 1.0:
            raise ValueError(
                f"`target_speedup` must be a finite number of at least 1 (1 = full size only), got "
                f"{icpc.target_speedup!r}: it divides the training cost of a sample."
            )
        if icpc.level_weights is not None and not icpc.is_resolved:
            raise ValueError(
                "Give either `level_weights` or `target_speedup`, not both: the weights are derived from the target."
            )
    if not isinstance(icpc.distill_smallest, bool):
        raise TypeError(f"`distill_smallest` must be True or False, got {icpc.distill_smallest!r}.")
    if not isinstance(icpc.uncompressed_last_epochs, int) or icpc.uncompressed_last_epochs < 0:
        raise ValueError(
            f"`uncompressed_last_epochs` must be a non-negative integer, got {icpc.uncompressed_last_epochs!r}."
        )


def apply_training_budget(icpc: ICPCConfig, modality: Any) -> None:
    """Once the levels are resolved: check the weights against derived levels, or derive them from the budget."""
    if icpc.level_weights is not None and len(icpc.level_weights) != len(icpc.levels):
        raise ValueError(
            f"`level_weights` has {len(icpc.level_weights)} entries but the derived levels are "
            f"{icpc.levels}: give `levels` explicitly with one weight each."
        )
    if icpc.target_speedup is not None:
        icpc.level_weights = weights_for_speedup(level_costs(modality, icpc), icpc.target_speedup)


CHECKS.append(check_training_fields)
RESOLVED.append(apply_training_budget)
