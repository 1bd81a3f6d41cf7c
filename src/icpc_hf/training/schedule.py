"""Moved: the level plan to `icpc_hf.training.plan`, the schedules to `icpc_hf.training.schedules`, the batch being
collated to `icpc_hf.drawn_level`. This old name keeps working, with a FutureWarning, until the next release."""

import warnings

warnings.warn(
    "icpc_hf.training.schedule has moved: import LevelPlan and LevelledCollate from icpc_hf.training.plan (or icpc_hf), "
    "the schedules from icpc_hf.training.schedules. The old name goes in the next release.",
    FutureWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    from .. import drawn_level
    from . import plan, schedules

    for module in (plan, schedules, drawn_level):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
