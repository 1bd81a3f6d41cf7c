"""A training budget turned into level weights: the most even weighting whose expected cost meets the target.

The doors of training apply it (`settings.check_training_settings`) once the levels are resolved; serving never reads
the weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..config import ICPCConfig
from ..modality import GridModality, Modality


def level_costs(modality: Modality, icpc: ICPCConfig) -> list[float]:
    """Training cost of a sample at each level, as a fraction of a full-size one: the patches of each level's grid
    over the full grid's, since the token count sets a step's cost. Text has no such figure before training."""
    if not isinstance(modality, GridModality):
        raise ValueError(
            f"`target_speedup` needs the cost of each level before training, which {modality.name} inputs do not fix "
            "(it depends on the data): give `level_weights` instead."
        )
    full = math.prod(modality.geo(icpc).full_grid)
    return [math.prod(modality.grid(level, icpc)) / full for level in icpc.levels]


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
