"""The search: every cascade over a set of levels replayed on one stored pass per level, and the point of those
replays that meets a target (an accuracy loss allowed, an accuracy wanted, or a speedup wanted)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ...cascade import CascadePolicy


@dataclass
class CascadePoint:
    thresholds: list[float]
    accuracy: float
    cost: float
    """Mean cost per sample as a fraction of one uncompressed pass: measured time or estimated FLOPs
    (`Calibration.cost_unit`)."""
    levels: list[float] = field(default_factory=list)
    """The cascade levels of this setting, cheapest first (a subset of the calibrated levels)."""


@dataclass
class LevelPasses:
    """One pass per level over a set of samples: what every cascade over those levels is replayed from."""

    levels: list[float]
    probabilities: list[torch.Tensor]
    """Per level, cheapest first: class probabilities, one row per sample."""
    costs: list[torch.Tensor]
    """Per level: each sample's cost as a fraction of its full-size pass (`Calibration.cost_unit`)."""
    labels: torch.Tensor

    @property
    def level_accuracies(self) -> list[float]:
        return [float((probs.argmax(-1) == self.labels).float().mean()) for probs in self.probabilities]

    def replay(self, levels: Sequence[float], thresholds: Sequence[float]) -> tuple[float, float]:
        """Accuracy and mean cost of the cascade over `levels` (a subset of these passes' levels) and `thresholds`."""
        steps = [self.levels.index(float(level)) for level in levels]
        predictions, spent = replay_cascade(
            [self.probabilities[i] for i in steps], [self.costs[i] for i in steps], thresholds
        )
        return float((predictions == self.labels).float().mean()), float(spent.mean())

    def search(self, candidates: Sequence[float], max_steps: int) -> list[CascadePoint]:
        """Every cascade of at most `max_steps` levels ending on the largest, at every combination of thresholds."""
        points = []
        last = len(self.levels) - 1
        for size in range(min(len(self.levels), max_steps)):
            for subset in itertools.combinations(range(last), size):
                levels = [self.levels[i] for i in (*subset, last)]
                for thresholds in itertools.product(candidates, repeat=size):
                    accuracy, cost = self.replay(levels, thresholds)
                    points.append(CascadePoint([float(t) for t in thresholds], accuracy, cost, levels))
        return points


def replay_cascade(
    probabilities: Sequence[torch.Tensor], costs: Sequence[torch.Tensor], thresholds: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and per-sample cost of a cascade replayed on stored per-level probabilities and costs, by the
    cascade's own stopping rule (`CascadePolicy`); `thresholds`: one per level but the last."""
    policy = CascadePolicy(None, (*thresholds[: len(probabilities) - 1], 0.0))
    count = probabilities[0].shape[0]
    predictions = torch.empty(count, dtype=torch.long)
    spent = torch.zeros(count, dtype=torch.float64)
    pending = torch.ones(count, dtype=torch.bool)
    for step, (probs, cost) in enumerate(zip(probabilities, costs)):
        spent[pending] += cost[pending]
        accept = pending & policy.accepts(probs.max(-1).values, step)
        predictions[accept] = probs[accept].argmax(-1)
        pending &= ~accept
    return predictions, spent


REFERENCES = ("full", "best_level")
"""What `max_accuracy_loss` is measured against: full-size inference, or the most accurate single level."""


def check_target(
    max_accuracy_loss: float | None = None,
    target_speedup: float | None = None,
    reference: str = "full",
    min_accuracy: float | None = None,
) -> None:
    """Refuse a calibration target that names no target, two targets, or impossible values, before any pass."""
    if sum(target is not None for target in (max_accuracy_loss, target_speedup, min_accuracy)) != 1:
        raise ValueError(
            "Give exactly one target: `max_accuracy_loss` (e.g. 0.003), `target_speedup` (e.g. 2.0) or "
            "`min_accuracy` (e.g. 0.92)."
        )
    if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
        raise ValueError(f"`min_accuracy` is an accuracy in [0, 1], got {min_accuracy}.")
    if max_accuracy_loss is not None and not max_accuracy_loss >= 0:
        raise ValueError(f"`max_accuracy_loss` must be non-negative, got {max_accuracy_loss}.")
    if target_speedup is not None and not target_speedup > 0:
        raise ValueError(f"`target_speedup` must be positive, got {target_speedup}.")
    if reference not in REFERENCES:
        raise ValueError(
            f"Unknown `reference` {reference!r}: use 'full' (full-size accuracy) or 'best_level' (the "
            "most accurate single level)."
        )
    if max_accuracy_loss is None and reference != "full":
        raise ValueError(
            f"`reference={reference!r}` applies to `max_accuracy_loss` only: drop it, or give "
            "`max_accuracy_loss` as the target."
        )


def choose_point(
    points: Sequence[CascadePoint],
    level_accuracies: Sequence[float],
    max_accuracy_loss: float | None = None,
    target_speedup: float | None = None,
    reference: str = "full",
    min_accuracy: float | None = None,
) -> tuple[CascadePoint | None, float | None]:
    """The point meeting the target at the lowest cost (or, for `target_speedup`, the most accurate within that
    cost), and the accuracy the target was measured against; `level_accuracies` end on full size's."""
    reference_accuracy = min_accuracy
    if max_accuracy_loss is not None:
        reference_accuracy = max(level_accuracies) if reference == "best_level" else level_accuracies[-1]
    if reference_accuracy is not None:
        floor = reference_accuracy - (max_accuracy_loss or 0.0) - 1e-12
        eligible = [p for p in points if p.accuracy >= floor]
        return (min(eligible, key=lambda p: (p.cost, -p.accuracy)) if eligible else None), reference_accuracy
    eligible = [p for p in points if p.cost <= 1.0 / target_speedup + 1e-12]
    return (max(eligible, key=lambda p: (p.accuracy, -p.cost)) if eligible else None), None
