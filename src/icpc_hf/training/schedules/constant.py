"""`constant`: every epoch draws from every level, with the settings' weights."""

from __future__ import annotations

from .base import Schedule
from .registry import register


@register
class Constant(Schedule):
    name = "constant"
    moves_with_the_clock = False

    def distribution(self, levels, weights, stage, progress):
        return list(levels), None if weights is None else list(weights)
