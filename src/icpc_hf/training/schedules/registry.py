"""The schedules by name: `ICPCConfig(schedule=name)` finds its class here."""

from __future__ import annotations

from typing import Any

from ...modality import DEFAULT_SCHEDULE
from .base import Schedule

SCHEDULES: dict[str, type[Schedule]] = {}
"""Every registered schedule, by `Schedule.name`."""


def register(schedule: type[Schedule]) -> type[Schedule]:
    """Add a schedule class under its `name` (a decorator); a name registered twice is refused."""
    if not schedule.name or schedule.name in SCHEDULES:
        raise ValueError(f"A schedule needs a name of its own; {schedule.name!r} is empty or taken.")
    SCHEDULES[schedule.name] = schedule
    return schedule


def schedule_name(icpc: Any) -> str:
    """The schedule settings train with: their own, or the grids' default for settings not resolved for a model."""
    return icpc.schedule or DEFAULT_SCHEDULE


def schedule_class(name: str) -> type[Schedule]:
    """The schedule registered as `name`, or the error that lists the registered ones."""
    if name not in SCHEDULES:
        raise ValueError(f"Unknown `schedule` {name!r}: use one of {', '.join(sorted(SCHEDULES))}.")
    return SCHEDULES[name]


def schedule_for(icpc: Any) -> Schedule:
    """A fresh schedule for settings, after its checks of them."""
    schedule = schedule_class(schedule_name(icpc))
    schedule.check(icpc)
    return schedule(icpc)
