"""`progressive`: the smallest level allowed rises with training, one level per equal share of the run, so a run
ends on the larger levels (the grids' default: docs/reference/selection-rule.md)."""

from __future__ import annotations

from .base import Schedule, drawn_levels
from .registry import register


@register
class Progressive(Schedule):
    name = "progressive"

    def floor(self, count: int, stage: int, progress: float) -> int:
        """The index of the smallest level drawn, among the `count` levels drawn at all."""
        return int(progress * count)

    def kept(self, levels: list[float], first: int) -> list[int]:
        """The indices of `levels` drawn when the floor is at `first`."""
        return list(range(first, len(levels)))

    def at_floor(self, levels: list[float], weights: list[float] | None, first: int):
        kept = self.kept(levels, first)
        return [levels[i] for i in kept], None if weights is None else [weights[i] for i in kept]

    def distribution(self, levels, weights, stage, progress):
        levels, weights = drawn_levels(levels, weights)  # the floor rises through the levels drawn at all
        first = min(len(levels) - 1, max(0, int(self.floor(len(levels), stage, progress))))
        return self.at_floor(levels, weights, first)
