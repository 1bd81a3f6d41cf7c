"""`anchored`: as `progressive`, but the cascade's levels are drawn in every epoch. A progressive run forgets its
small levels, and a cascade then has nothing cheap to answer with."""

from __future__ import annotations

from .progressive import Progressive
from .registry import register


@register
class Anchored(Progressive):
    name = "anchored"

    def kept(self, levels, first):
        anchors = self.icpc.cascade_levels or ()
        return [i for i, lv in enumerate(levels) if i >= first or any(abs(lv - a) < 1e-9 for a in anchors)]
