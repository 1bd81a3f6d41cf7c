"""Choose cascade thresholds on a validation set for a target: an accuracy loss allowed, or a speedup wanted.

Every cascade level is run once over the validation samples; the cascade is then replayed on those stored
probabilities for every candidate threshold and every subset of the levels that keeps the last one, which makes
the search cost one pass per level whatever the grid. Full-size inference alone is one of the candidates, so the
chosen setting is never dearer than not cascading at all.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..cascade import CascadePolicy, run_cascade


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
        from ..config import ICPCConfig
        from ..patching import icpc_settings, patch_model

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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(5, 3.5))
        axes.scatter(
            [p.cost for p in self.points], [p.accuracy for p in self.points], s=8, alpha=0.4, label="threshold settings"
        )
        front = self.frontier()
        axes.plot([p.cost for p in front], [p.accuracy for p in front], "o-", color="C1", label="frontier")
        axes.axhline(self.full_accuracy, color="grey", linestyle="--", label="full size")
        if self.chosen is not None:
            axes.scatter([self.chosen.cost], [self.chosen.accuracy], marker="*", s=150, color="C3", label="chosen")
        unit = "measured time" if self.cost_unit == "time" else "est. FLOPs"
        axes.set_xlabel(f"cost (fraction of one full-size pass, {unit})")
        axes.set_ylabel("accuracy")
        axes.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
        return path


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


COST_UNITS = ("time", "flops")
"""What calibration minimises: `time`, each level's cost measured on the calibration passes (what a user waits
for: small levels cost more than their FLOPs on small batches and small models), or `flops`, estimated from the
token counts (the same on every machine and every run)."""


def level_seconds(run_level, levels: Sequence[float], warmup: Any) -> list[float]:
    """Seconds each level's pass took; under torch.distributed, rank 0's, so every rank chooses the same cascade."""
    warmup()  # the first pass of a process pays for allocations and kernel selection: not a level's cost
    seconds = []
    for level in levels:
        start = time.perf_counter()
        run_level(level)
        seconds.append(time.perf_counter() - start)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        shared = torch.tensor(seconds, dtype=torch.float64)
        torch.distributed.broadcast(shared, src=0)
        seconds = shared.tolist()
    return seconds


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


def run_level_passes(
    model: Any,
    features: Sequence[dict[str, Any]],
    processor: Any,
    labels: Sequence[int],
    levels: Sequence[float],
    batch_size: int = 64,
    cost: str = "time",
) -> LevelPasses:
    """One pass per level (cheapest first) over `features`, each sample's cost in `cost`'s unit (`COST_UNITS`):
    what every cascade over these levels is replayed from."""
    by_level = {}

    def run_level(level: float) -> None:
        by_level[level] = run_cascade(model, features, processor, levels=[level], batch_size=batch_size)

    if cost == "time":
        first_batch = [features[i] for i in range(min(len(features), batch_size))]
        seconds = level_seconds(
            run_level,
            levels,
            lambda: run_cascade(model, first_batch, processor, levels=[levels[-1]], batch_size=batch_size),
        )
    else:
        for level in levels:
            run_level(level)
    runs = [by_level[level] for level in levels]
    levels = [run.levels[0] for run in runs]
    full_flops = runs[0].full_flops
    probabilities = [run.probabilities for run in runs]
    costs = [run.spent_flops / full_flops for run in runs]
    if cost == "time":  # rescale each level's FLOPs shares so that their mean is the level's measured time share
        per_flop = [t / float(c.mean()) for t, c in zip(seconds, costs)]
        costs = [c * (rate / per_flop[-1]) for c, rate in zip(costs, per_flop)]
    return LevelPasses(levels, probabilities, costs, torch.as_tensor(list(labels)))


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


def main(argv: Sequence[str] | None = None) -> None:
    """`icpc-calibrate MODEL_DIR DATA_DIR` (or `python -m icpc_hf.training.calibrate`): calibrate a saved ICPC model on a
    saved dataset."""
    parser = argparse.ArgumentParser(prog="icpc-calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="folder or Hub id of a model saved with its ICPC settings and processor")
    parser.add_argument("data", help="a datasets folder (save_to_disk) with the model's input features and labels")
    parser.add_argument("--split", default=None, help="split of a DatasetDict (default: validation, else test)")
    parser.add_argument("--label-column", default="label")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--max-accuracy-loss", type=float, help="absolute, e.g. 0.003 for 0.3 points")
    target.add_argument("--target-speedup", type=float)
    target.add_argument("--min-accuracy", type=float, help="the cheapest setting at least this accurate")
    parser.add_argument("--levels", type=float, nargs="+", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--cost",
        choices=COST_UNITS,
        default="time",
        help="what a cascade's cost counts: measured time on this machine, or estimated FLOPs",
    )
    parser.add_argument("--plot", default=None, help="write the accuracy/cost frontier to this PNG")
    parser.add_argument("--save", action="store_true", help="write the chosen thresholds into the model's config")
    args = parser.parse_args(argv)

    import datasets
    from transformers import AutoConfig, AutoProcessor

    from ..patching import patch_model
    from ..registry import registration_for

    data = datasets.load_from_disk(args.data)
    if isinstance(data, datasets.DatasetDict):
        split = args.split or ("validation" if "validation" in data else "test")
        data = data[split]
    config = AutoConfig.from_pretrained(args.model)
    model = registration_for(config).auto_model.from_pretrained(args.model)
    patch_model(model)
    processor = AutoProcessor.from_pretrained(args.model)
    result = calibrate_thresholds(
        model,
        data,
        processor,
        data[args.label_column],
        levels=args.levels,
        max_accuracy_loss=args.max_accuracy_loss,
        target_speedup=args.target_speedup,
        min_accuracy=args.min_accuracy,
        batch_size=args.batch_size,
        cost=args.cost,
    )
    report = {
        "levels": result.levels,
        "full_accuracy": result.full_accuracy,
        "cost_unit": result.cost_unit,
        "chosen": None if result.chosen is None else vars(result.chosen),
        "frontier": [vars(p) for p in result.frontier()],
    }
    print(json.dumps(report, indent=2))
    if args.plot:
        result.plot(args.plot)
    if args.save and result.chosen is not None:
        config.icpc = result.apply(model).config.icpc
        config.save_pretrained(args.model)
    if result.chosen is None:
        raise SystemExit("No threshold setting meets the target; see the frontier above.")


if __name__ == "__main__":
    main()
