"""Schedules: how the level draw moves over a training run, one class per module, registered by name.

`ICPCConfig(schedule=name)` names one, `schedule_for(icpc)` makes it. A new schedule is one module here holding a
`Schedule` subclass decorated with `@register`, and its import below.
"""

from . import adaptive, anchored, bookends, constant, progressive, progressive_bookends, progressive_resizing  # noqa: F401
from .base import Distribution, Schedule, drawn_levels
from .registry import SCHEDULES, register, schedule_class, schedule_for, schedule_name

__all__ = [
    "SCHEDULES",
    "Distribution",
    "Schedule",
    "drawn_levels",
    "register",
    "schedule_class",
    "schedule_for",
    "schedule_name",
]
