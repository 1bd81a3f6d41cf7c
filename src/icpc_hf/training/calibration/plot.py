"""The accuracy/cost frontier of a calibration, drawn with matplotlib (imported only when a plot is asked for)."""

from __future__ import annotations

from typing import Any


def plot_frontier(calibration: Any, path: str) -> str:
    """Every point searched by accuracy and cost, the frontier, full size and the chosen point, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3.5))
    axes.scatter(
        [p.cost for p in calibration.points],
        [p.accuracy for p in calibration.points],
        s=8,
        alpha=0.4,
        label="threshold settings",
    )
    front = calibration.frontier()
    axes.plot([p.cost for p in front], [p.accuracy for p in front], "o-", color="C1", label="frontier")
    axes.axhline(calibration.full_accuracy, color="grey", linestyle="--", label="full size")
    if calibration.chosen is not None:
        axes.scatter(
            [calibration.chosen.cost], [calibration.chosen.accuracy], marker="*", s=150, color="C3", label="chosen"
        )
    unit = "measured time" if calibration.cost_unit == "time" else "est. FLOPs"
    axes.set_xlabel(f"cost (fraction of one full-size pass, {unit})")
    axes.set_ylabel("accuracy")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
