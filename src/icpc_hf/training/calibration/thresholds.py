"""Choose cascade thresholds on a validation set for a target: an accuracy loss allowed, or a speedup wanted.

Every cascade level is run once over the validation samples; the cascade is then replayed on those stored
probabilities for every candidate threshold and every subset of the levels that keeps the last one, which makes
the search cost one pass per level whatever the grid. Full-size inference alone is one of the candidates, so the
chosen setting is never dearer than not cascading at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...config import ICPCConfig
from ...patching import icpc_settings, patch_model
from .plot import plot_frontier
from .search import CascadePoint, LevelPasses, check_target, choose_point
from .timing import COST_UNITS, run_level_passes


@dataclass
class Calibration:
    levels: list[float]
    """Every level searched; the chosen setting may use a subset (`chosen.levels`)."""
    full_accuracy: float
    points: list[CascadePoint]
    chosen: CascadePoint | None
    level_accuracies: list[float] = field(default_factory=list)
    """Accuracy of each level of `levels` alone, on the calibration set."""
    reference_accuracy: float | None = None
    """The accuracy `max_accuracy_loss` was measured against: full size's, or the best single level's."""
    cost_unit: str = "flops"
    """What `CascadePoint.cost` counts: `time` (seconds measured per level on this machine) or `flops` (estimated)."""
    passes: LevelPasses | None = field(default=None, repr=False)
    """The passes the points were replayed from: another selection rule can be replayed on them offline."""

    @property
    def best_level_accuracy(self) -> float:
        """The most accurate single level: a model trained with ICPC may be best below full size."""
        return max(self.level_accuracies) if self.level_accuracies else self.full_accuracy

    def apply(self, model: Any) -> Any:
        """Re-patch `model` with the chosen levels and thresholds (saved with it from then on)."""
        if self.chosen is None:
            raise ValueError("No threshold setting met the target: relax it, or pick a point of `frontier()`.")
        settings = icpc_settings(model).to_dict()
        settings.update(cascade_levels=self.chosen.levels or self.levels, thresholds=self.chosen.thresholds or [0.0])
        return patch_model(model, ICPCConfig.from_dict(settings))

    def frontier(self) -> list[CascadePoint]:
        """The points no other point beats on both accuracy and cost, cheapest first."""
        best: list[CascadePoint] = []
        for point in sorted(self.points, key=lambda p: (p.cost, -p.accuracy)):
            if not best or point.accuracy > best[-1].accuracy:
                best.append(point)
        return best

    def plot(self, path: str) -> str:
        """Write the accuracy/cost frontier of the points searched to a PNG at `path` (needs matplotlib)."""
        return plot_frontier(self, path)


def calibrate_thresholds(
    model: Any,
    features: Sequence[dict[str, Any]],
    processor: Any,
    labels: Sequence[int],
    levels: Sequence[float] | None = None,
    max_accuracy_loss: float | None = None,
    target_speedup: float | None = None,
    candidates: Sequence[float] = tuple(np.round(np.arange(0.0, 1.0, 0.05), 2)) + (0.97, 0.99, 1.0),
    batch_size: int = 64,
    reference: str = "full",
    max_steps: int = 3,
    min_accuracy: float | None = None,
    cost: str = "time",
) -> Calibration:
    """Thresholds (one per level but the last) meeting the target at the lowest cost.

    `max_accuracy_loss`: the cheapest setting whose accuracy is at most this much below full-size inference
    (absolute, e.g. 0.003 for 0.3 points). `target_speedup`: the most accurate setting whose estimated cost is at
    most 1 / target_speedup of a full-size pass. `min_accuracy`: the cheapest setting at least this accurate, e.g.
    the accuracy of the model it replaces. Exactly one target must be given.

    `reference="best_level"` measures `max_accuracy_loss` against the most accurate single level instead of full
    size: a model trained with ICPC is often best below full size, and `max_accuracy_loss=0.0,
    reference="best_level"` then asks for the cheapest setting that loses nothing against serving that level.

    `levels` default to every training and cascade level of the model (a model is often best at a level the
    default cascade skips); a cascade of at most `max_steps` of them is searched, the largest always last, which
    keeps the search to thousands of replays however many levels there are.

    `cost`: what a cascade's cost counts (`COST_UNITS`). With `time` (default) each level's cost is the time its
    pass over the calibration set took, relative to the largest level's (per sample, it follows the sample's
    estimated FLOPs within the level), so a cascade chosen as cheaper is cheaper on this machine as measured.
    """
    check_target(max_accuracy_loss, target_speedup, reference, min_accuracy)
    if cost not in COST_UNITS:
        raise ValueError(f"Unknown `cost` {cost!r}: use 'time' (measured) or 'flops' (estimated).")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"`max_steps` must be a positive integer (levels in one cascade), got {max_steps!r}.")
    if levels is None:
        stored = model.config.icpc
        levels = [*stored["cascade_levels"], *(stored.get("levels") or [])]
    levels = sorted({float(lv) for lv in levels})
    if len(levels) < 2:
        raise ValueError(
            f"Calibration needs at least two cascade levels, got {levels}: with one level every sample answers there "
            "and there is nothing to choose. Pass `levels=[0.5, 1.0]` (for example) or patch the model with "
            "`ICPCConfig(cascade_levels=[...])`."
        )
    passes = run_level_passes(model, features, processor, labels, levels, batch_size, cost)
    level_accuracies = passes.level_accuracies
    full_accuracy = level_accuracies[-1]
    points = passes.search(candidates, max_steps)
    chosen, reference_accuracy = choose_point(
        points, level_accuracies, max_accuracy_loss, target_speedup, reference, min_accuracy
    )
    return Calibration(passes.levels, full_accuracy, points, chosen, level_accuracies, reference_accuracy, cost, passes)
