"""`bookends`: every epoch, each batch at the smallest level drawn or at the largest (full size), a fair coin: the
two levels a two-step cascade serves stay trained to the end."""

from __future__ import annotations

from .base import Schedule, drawn_levels
from .registry import register


def both_ends(levels, weights) -> tuple[list[float], None]:
    """The smallest and the largest of the levels drawn at all, drawn alike."""
    drawn, _ = drawn_levels(levels, weights)
    return sorted({drawn[0], drawn[-1]}), None


@register
class Bookends(Schedule):
    name = "bookends"
    moves_with_the_clock = False

    @classmethod
    def check(cls, icpc):
        if icpc.level_weights is not None or icpc.target_speedup is not None:
            raise ValueError(
                "The `bookends` schedule draws its two levels (the smallest and full size) alike, so `level_weights` "
                "and `target_speedup` would be ignored: drop them, or use `schedule='constant'` to weight every level."
            )

    def distribution(self, levels, weights, stage, progress):
        return both_ends(levels, weights)
