"""`progressive_resizing`, the peer (not ICPC): one level for every sample of an epoch, growing from the smallest
to full size, full size for the last fifth of the run (MosaicML Composer's default)."""

from __future__ import annotations

from .base import Schedule
from .registry import register

FULL_SIZE_SHARE = 0.2
"""The share of the run trained at full size at its end."""


@register
class ProgressiveResizing(Schedule):
    name = "progressive_resizing"

    def distribution(self, levels, weights, stage, progress):
        ramp = progress / (1.0 - FULL_SIZE_SHARE)
        target = levels[0] + (1.0 - levels[0]) * ramp
        return [max(lv for lv in levels if lv <= target + 1e-9) if ramp < 1 else levels[-1]], None
