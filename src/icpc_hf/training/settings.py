"""The settings only training reads, checked where training begins, and the level weights a training budget gives.

`ICPCConfig` declares every field, so a served `config.icpc` round-trips, and checks the fields serving reads itself.
The fields only training reads (level weights, schedule, budget, epochs) are checked here, by an explicit call at each
door of training: `ICPCDataCollator`, `LevelPlan` and `ICPCCallback` (through its plan). A served folder holds no
training code and never reads them.
"""

from __future__ import annotations

import math

from ..config import ICPCConfig, as_float_list, check_flag
from ..registry import registration_for
from .budget import level_costs, weights_for_speedup
from .schedules import schedule_class, schedule_name


def check_level_weights(icpc: ICPCConfig) -> None:
    """One weight per level, whether the levels were given or derived by `patch_model`."""
    if icpc.level_weights is not None and icpc.levels is not None and len(icpc.level_weights) != len(icpc.levels):
        raise ValueError(
            f"`level_weights` has {len(icpc.level_weights)} entries but the levels are {icpc.levels}: give one weight "
            "per level (levels are kept sorted ascending; give `levels` explicitly when they are derived)."
        )


def check_budget(icpc: ICPCConfig) -> None:
    """A `target_speedup` that divides a sample's training cost, given instead of hand-picked weights."""
    target = icpc.target_speedup
    if target is None:
        return
    if isinstance(target, bool) or not isinstance(target, (int, float)):
        raise TypeError(f"`target_speedup` must be a number, got {target!r}.")
    if not math.isfinite(target) or target < 1.0:
        raise ValueError(
            f"`target_speedup` must be a finite number of at least 1 (1 = full size only), got {target!r}: it "
            "divides the training cost of a sample."
        )


def check_training_settings(icpc: ICPCConfig) -> ICPCConfig:
    """Refuse level weights, schedules, budgets and epoch counts that training could not use; once the settings are
    resolved for a model, give them the level weights of their budget. Returns `icpc`, checked."""
    if icpc.level_weights is not None:
        icpc.level_weights = as_float_list("level_weights", icpc.level_weights)
        if any(w < 0 or not math.isfinite(w) for w in icpc.level_weights) or sum(icpc.level_weights) <= 0:
            raise ValueError(
                f"`level_weights` must be finite, non-negative and not all zero, got {icpc.level_weights}."
            )
    check_level_weights(icpc)
    check_budget(icpc)
    check_flag("distill_smallest", icpc.distill_smallest)
    if not isinstance(icpc.uncompressed_last_epochs, int) or icpc.uncompressed_last_epochs < 0:
        raise ValueError(
            f"`uncompressed_last_epochs` must be a non-negative integer, got {icpc.uncompressed_last_epochs!r}."
        )
    schedule_class(schedule_name(icpc)).check(icpc)
    if icpc.target_speedup is not None:
        apply_training_budget(icpc)
    return icpc


def apply_training_budget(icpc: ICPCConfig) -> None:
    """The level weights of `target_speedup`; before the levels are resolved, only the refusal of both at once."""
    both = "Give either `level_weights` or `target_speedup`, not both: the weights are derived from the target."
    if not icpc.is_resolved:
        if icpc.level_weights is not None:
            raise ValueError(both)
        return
    weights = weights_for_speedup(level_costs(registration_for(icpc.model_type).modality, icpc), icpc.target_speedup)
    if icpc.level_weights is not None and icpc.level_weights != weights:
        raise ValueError(f"{both} These weights {icpc.level_weights} are not the target's {weights}.")
    icpc.level_weights = weights


__all__ = ["check_training_settings", "check_level_weights"]
