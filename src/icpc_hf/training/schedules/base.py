"""What every schedule is: how the levels a training stage draws from move over the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

Distribution = tuple[list[float], "list[float] | None"]
"""The levels a stage draws from, and their weights (None: alike)."""


def drawn_levels(levels: Sequence[float], weights: Sequence[float] | None) -> Distribution:
    """The levels (and their weights) that are drawn at all: those of positive weight, every level without weights."""
    if weights is None:
        return list(levels), None
    drawn = [(lv, w) for lv, w in zip(levels, weights) if w > 0]
    return [lv for lv, _ in drawn], [w for _, w in drawn]


class Schedule:
    """One way the level draw moves over a run, named by `ICPCConfig(schedule=...)` and registered by `name`.

    A stage is an epoch for a dataset with a length, an optimizer step for a stream; `progress` is the stage over
    the run's length in [0, 1] (0 when the length is unknown). A schedule holds its own state (`state_dict`, kept
    in checkpoints), refuses the settings it would misread (`check`) and the Trainer arguments it cannot follow
    (`preflight`). `LevelPlan` applies what every schedule shares: the uncompressed last epochs.
    """

    name: ClassVar[str] = ""
    moves_with_the_clock: ClassVar[bool] = True
    """The draw follows the run's progress: without a known length it cannot move, and every level is drawn."""
    needs_length: ClassVar[bool] = False
    """It moves between passes over the data, which a stream trained for `max_steps` does not make: refused there."""

    def __init__(self, icpc: Any) -> None:
        self.icpc = icpc

    @classmethod
    def check(cls, icpc: Any) -> None:
        """Refuse settings this schedule would ignore or misread (run where training begins)."""

    def preflight(self, args: Any) -> None:
        """Refuse Trainer arguments this schedule cannot follow, before the first step."""

    def distribution(
        self, levels: Sequence[float], weights: Sequence[float] | None, stage: int, progress: float
    ) -> Distribution:
        """The levels (and weights) stage `stage` draws from; `levels` sorted ascending, the last full size."""
        raise NotImplementedError

    def begin_stage(self, stage: int) -> None:
        """Stage `stage` begins (ICPCCallback calls it as each epoch begins)."""

    def evaluated(self, args: Any, metrics: dict[str, float], num_levels: int) -> None:
        """An evaluation during training returned `metrics` (over `num_levels` levels drawn at all)."""

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to draw the same levels (JSON: it goes into the Trainer's checkpoints)."""
        return {}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Continue from `state_dict()` of a checkpoint."""
