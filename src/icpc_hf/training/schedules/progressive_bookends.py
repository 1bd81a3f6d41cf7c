"""`progressive_bookends`: `progressive` until its last stage (where progressive draws full size alone), then
`bookends`: the run trains as `progressive` does, batch for batch, and its end brings back the smallest level."""

from __future__ import annotations

from .bookends import both_ends
from .progressive import Progressive
from .registry import register


@register
class ProgressiveBookends(Progressive):
    name = "progressive_bookends"

    def at_floor(self, levels, weights, first):
        if first == len(levels) - 1:
            return both_ends(levels, weights)
        return super().at_floor(levels, weights, first)
