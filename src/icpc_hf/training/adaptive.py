"""The `adaptive` schedule's state: the floor of the levels an epoch draws from, moved by the evaluations during
training. A new best of the evaluation metric means the model still learns (it underfits): the floor rises one
level, less compression. No new best means it is past its best (it overfits): the floor falls one level, more
compression, which acts as augmentation. A move takes effect when the next epoch begins, so DataLoader workers
(started per epoch) and a resumed run draw the same levels."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def watched_metric(args: Any) -> tuple[str, bool]:
    """The metric key the floor follows and whether greater is better: the Trainer's `metric_for_best_model`,
    as `load_best_model_at_end` reads it, else `eval_loss`."""
    name = getattr(args, "metric_for_best_model", None) or "loss"
    key = name if name.startswith("eval_") else f"eval_{name}"
    greater = getattr(args, "greater_is_better", None)
    if greater is None or getattr(args, "metric_for_best_model", None) is None:
        greater = not key.endswith("loss")
    return key, bool(greater)


@dataclass
class EvaluationFloor:
    """Where the floor is, the best metric so far, and the floor each epoch began with (kept in checkpoints)."""

    floor: int = 0
    best: float | None = None
    epoch_floors: dict[int, int] = field(default_factory=dict)

    def evaluated(self, args: Any, metrics: dict[str, float], num_levels: int) -> None:
        """Move the floor by the evaluation's `metrics` (over `num_levels` levels drawn at all)."""
        key, greater = watched_metric(args)
        if key not in metrics:
            raise ValueError(
                f"The `adaptive` ICPC schedule follows `{key}`, and the evaluation returned {sorted(metrics)}: give "
                "the evaluation set labels (for `eval_loss`), or set `metric_for_best_model` to a metric it returns."
            )
        value = float(metrics[key])
        improved = self.best is None or (value > self.best if greater else value < self.best)
        if improved:
            self.best = value
        self.floor = min(num_levels - 1, self.floor + 1) if improved else max(0, self.floor - 1)

    def begin_epoch(self, epoch: int) -> int:
        """The floor epoch `epoch` draws from: the one it began with when a resumed run repeats it."""
        return self.epoch_floors.setdefault(int(epoch), self.floor)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict[str, Any] | None) -> EvaluationFloor:
        saved = saved or {}
        floors = {int(epoch): int(floor) for epoch, floor in (saved.get("epoch_floors") or {}).items()}
        return cls(int(saved.get("floor", 0)), saved.get("best"), floors)
