"""`adaptive`: the levels from a floor up, the floor moved by the evaluations during training. A new best of the
evaluation metric means the model still learns (it underfits): the floor rises one level, less compression. No new
best means it is past its best (it overfits): the floor falls one level, more compression, which acts as
augmentation. A move takes effect when the next epoch begins, so DataLoader workers (started per epoch) and a
resumed run draw the same levels."""

from __future__ import annotations

from typing import Any

from .progressive import Progressive
from .registry import register


def watched_metric(args: Any) -> tuple[str, bool]:
    """The metric key the floor follows and whether greater is better: the Trainer's `metric_for_best_model`,
    as `load_best_model_at_end` reads it, else `eval_loss`."""
    name = getattr(args, "metric_for_best_model", None) or "loss"
    key = name if name.startswith("eval_") else f"eval_{name}"
    greater = getattr(args, "greater_is_better", None)
    if greater is None or getattr(args, "metric_for_best_model", None) is None:
        greater = not key.endswith("loss")
    return key, bool(greater)


@register
class Adaptive(Progressive):
    name = "adaptive"
    moves_with_the_clock = False
    needs_length = True

    def __init__(self, icpc: Any) -> None:
        super().__init__(icpc)
        self.current = 0
        """Where the floor is now (an index into the levels drawn at all)."""
        self.best: float | None = None
        """The best evaluation metric so far."""
        self.epoch_floors: dict[int, int] = {}
        """The floor each epoch began with: what it draws from (0 for an epoch not begun)."""

    def preflight(self, args):
        if args.eval_strategy == "no":
            raise ValueError(
                "The `adaptive` ICPC schedule moves on the evaluations during training, and `eval_strategy` is 'no': "
                "set `TrainingArguments(eval_strategy='epoch')` and give the Trainer an `eval_dataset`, or choose "
                "another schedule (`ICPCConfig(schedule='progressive')`)."
            )

    def floor(self, count, stage, progress):
        return self.epoch_floors.get(stage, 0)

    def begin_stage(self, stage):
        self.epoch_floors.setdefault(int(stage), self.current)  # a resumed run repeats an epoch with its floor

    def evaluated(self, args, metrics, num_levels):
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
        self.current = min(num_levels - 1, self.current + 1) if improved else max(0, self.current - 1)

    def state_dict(self):
        return {"floor": self.current, "best": self.best, "epoch_floors": dict(self.epoch_floors)}

    def load_state_dict(self, state):
        state = state or {}
        self.current, self.best = int(state.get("floor", 0)), state.get("best")
        self.epoch_floors = {int(epoch): int(floor) for epoch, floor in (state.get("epoch_floors") or {}).items()}
