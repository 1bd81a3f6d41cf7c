"""Never ship a cascade that loses: choose it on one half of the evaluation set, check it on the other.

A cascade calibrated on a few hundred samples is chosen because it did well on exactly those samples, so its
accuracy there is optimistic (on the benchmarks, cascades chosen on 200 validation samples lost 3-4 points on test).
Here the cascade is searched on half the evaluation set and shipped only when, on the other half, a one-sided
confidence bound on its accuracy loss against full size (paired per sample: where the two disagree) stays within
`max_loss`; otherwise the model serves full size alone, which is never slower than plain inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .calibrate import Calibration, calibrate_thresholds, replay_cascade, run_level_passes

CHECK_DEFAULTS = {"max_loss": 0.01, "confidence": 0.95, "seed": 0}
"""A cascade ships when its accuracy loss against full size is at most 1 point at 95% confidence."""


@dataclass
class ShipCheck:
    """The held-out check of a calibrated cascade: what it measured and whether the cascade ships."""

    calibrated_on: int
    checked_on: int
    cascade_accuracy: float | None = None
    full_accuracy: float | None = None
    loss_bound: float | None = None
    """Upper confidence bound of (full-size accuracy - cascade accuracy) on the check half."""
    ships: bool = False
    reason: str = ""


def one_sided_z(confidence: float) -> float:
    """The standard normal quantile at `confidence` (e.g. 1.645 at 0.95)."""
    return math.sqrt(2.0) * torch.erfinv(torch.tensor(2.0 * confidence - 1.0, dtype=torch.float64)).item()


def loss_bound(full_right: torch.Tensor, cascade_right: torch.Tensor, confidence: float) -> float:
    """Upper `confidence` bound of the mean of full_right - cascade_right (booleans per sample), paired."""
    differences = full_right.double() - cascade_right.double()
    count = len(differences)
    spread = differences.std(unbiased=True).item() if count > 1 else 1.0
    return differences.mean().item() + one_sided_z(confidence) * spread / math.sqrt(count)


def check_settings(check: Any) -> dict[str, Any] | None:
    """The check's settings from ICPCCallback's `ship_check` (True, False or a dict of CHECK_DEFAULTS' keys)."""
    if check is False:
        return None
    if check is True:
        return dict(CHECK_DEFAULTS)
    if not isinstance(check, dict) or set(check) - set(CHECK_DEFAULTS):
        raise ValueError(f"`ship_check` takes True, False or a dict of {sorted(CHECK_DEFAULTS)}, got {check!r}.")
    settings = {**CHECK_DEFAULTS, **check}
    if not 0.0 < settings["confidence"] < 1.0 or not settings["max_loss"] >= 0.0:
        raise ValueError(f"`ship_check` needs 0 < confidence < 1 and max_loss >= 0, got {check!r}.")
    return settings


def calibrate_and_check(
    model: Any, features: Any, processor: Any, labels: list[int], target: dict[str, Any], check: dict[str, Any]
) -> tuple[Calibration, ShipCheck]:
    """Calibrate on a seeded half of `features` (`target`: `calibrate_thresholds` keywords) and check the chosen
    cascade on the other half; `ShipCheck.ships` says whether to apply it."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(check["seed"])).tolist()
    halves = [sorted(order[::2]), sorted(order[1::2])]
    (choose, held) = [[features[i] for i in half] for half in halves]
    choose_labels, held_labels = [[labels[i] for i in half] for half in halves]
    calibration = calibrate_thresholds(model, choose, processor, choose_labels, **target)
    result = ShipCheck(len(choose), len(held))
    chosen = calibration.chosen
    if chosen is None:
        result.reason = "no setting met the calibration target"
        return calibration, result
    levels = chosen.levels or calibration.levels
    if list(levels) == [1.0]:
        result.ships, result.reason = True, "full size alone was the cheapest setting meeting the target"
        return calibration, result
    passes = run_level_passes(
        model, held, processor, held_labels, sorted({*levels, 1.0}), target.get("batch_size", 64), "flops"
    )
    steps = [passes.levels.index(float(level)) for level in levels]
    predictions, _ = replay_cascade(
        [passes.probabilities[i] for i in steps], [passes.costs[i] for i in steps], chosen.thresholds
    )
    truth = passes.labels
    cascade_right, full_right = predictions == truth, passes.probabilities[-1].argmax(-1) == truth
    result.cascade_accuracy = float(cascade_right.float().mean())
    result.full_accuracy = float(full_right.float().mean())
    result.loss_bound = loss_bound(full_right, cascade_right, check["confidence"])
    result.ships = result.loss_bound <= check["max_loss"] + 1e-12
    result.reason = (
        f"on {len(held)} held-out samples the cascade answered {result.cascade_accuracy:.4f} against full size's "
        f"{result.full_accuracy:.4f}; its loss is at most {result.loss_bound:.4f} at {check['confidence']:.0%} "
        f"confidence ({'within' if result.ships else 'above'} the {check['max_loss']:.4f} allowed)"
    )
    return calibration, result
