"""Choose cascade thresholds on a validation set for a target: an accuracy loss allowed, or a speedup wanted.

The public names of calibration in one place; each job is a module of `training/calibration/`: the search over
replayed cascades (`search`), one timed pass per level (`timing`), the one call (`thresholds`), the frontier plot
(`plot`) and the `icpc-calibrate` command (`command`; `python -m icpc_hf.training.calibrate` runs it too).
"""

from __future__ import annotations

from .calibration.command import main
from .calibration.plot import plot_frontier
from .calibration.search import REFERENCES, CascadePoint, LevelPasses, check_target, choose_point, replay_cascade
from .calibration.thresholds import Calibration, calibrate_thresholds
from .calibration.timing import COST_UNITS, level_seconds, run_level_passes

__all__ = [
    "COST_UNITS",
    "REFERENCES",
    "Calibration",
    "CascadePoint",
    "LevelPasses",
    "calibrate_thresholds",
    "check_target",
    "choose_point",
    "level_seconds",
    "main",
    "plot_frontier",
    "replay_cascade",
    "run_level_passes",
]

if __name__ == "__main__":
    main()
