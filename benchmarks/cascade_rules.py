"""Cascade calibration rules replayed offline on the level passes the convergence runs keep.

    python benchmarks/cascade_rules.py            # benchmarks/results/cascade-passes -> docs/results/cascade-rules.md

Each rule chooses a cascade (levels and thresholds) from a trained model's passes over the validation half; the
choice is then replayed on the same model's passes over the test half. Every rule sees the same models, so their
differences are the rules' alone. The round's rule: docs/reference/selection-rule.md ("how the served cascade is
calibrated").
"""

from __future__ import annotations

import argparse
import glob
import inspect
import json
import os
import statistics
from collections import defaultdict
from collections.abc import Callable

import torch
from harness import RESULTS

from icpc_hf.training.calibrate import CascadePoint, LevelPasses, calibrate_thresholds, choose_point

PASSES_RESULTS = os.path.join(RESULTS, "cascade-passes")
DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "results", "cascade-rules.md")
CANDIDATES = inspect.signature(calibrate_thresholds).parameters["candidates"].default
"""The thresholds `calibrate_thresholds` searches by default: the rules search the same grid."""
MAX_STEPS = inspect.signature(calibrate_thresholds).parameters["max_steps"].default
ORACLE_SPEED = 1.3
"""The issue's speed target for the shipped cascade: the oracle row is the most accurate test point this fast."""


def passes_from(record: dict) -> LevelPasses:
    return LevelPasses(
        [float(level) for level in record["levels"]],
        [torch.tensor(probs) for probs in record["probabilities"]],
        [torch.tensor(cost, dtype=torch.float64) for cost in record["costs"]],
        torch.tensor(record["labels"]),
    )


def subset(passes: LevelPasses, rows: torch.Tensor) -> LevelPasses:
    """The same passes over some of the samples."""
    return LevelPasses(
        passes.levels, [p[rows] for p in passes.probabilities], [c[rows] for c in passes.costs], passes.labels[rows]
    )


def cheapest_as_good(points: list[CascadePoint], passes: LevelPasses, reference: str) -> CascadePoint | None:
    return choose_point(points, passes.level_accuracies, max_accuracy_loss=0.0, reference=reference)[0]


def best_level(passes: LevelPasses, points: list[CascadePoint]) -> CascadePoint | None:
    """Today's default (`ICPCCallback(calibrate="best_level")`)."""
    return cheapest_as_good(points, passes, "best_level")


def full(passes: LevelPasses, points: list[CascadePoint]) -> CascadePoint | None:
    return cheapest_as_good(points, passes, "full")


def two_levels(passes: LevelPasses, points: list[CascadePoint]) -> CascadePoint | None:
    """`best_level` over the cascades of at most two levels (what `max_steps=2` searches)."""
    return cheapest_as_good([p for p in points if len(p.levels) <= 2], passes, "best_level")


def halves(passes: LevelPasses, points: list[CascadePoint]) -> CascadePoint | None:
    """The cheapest point that meets `best_level`'s condition on both halves (alternate samples) at once."""
    rows = torch.arange(len(passes.labels))
    parts = [subset(passes, rows[rows % 2 == side]) for side in (0, 1)]
    searched = [part.search(CANDIDATES, MAX_STEPS) for part in parts]  # the same points in the same order
    floors = [max(part.level_accuracies) - 1e-12 for part in parts]
    eligible = [
        point
        for point, *per_half in zip(points, *searched)
        if all(half.accuracy >= floor for half, floor in zip(per_half, floors))
    ]
    return min(eligible, key=lambda p: (p.cost, -p.accuracy)) if eligible else None


RULES: dict[str, Callable[[LevelPasses, list[CascadePoint]], CascadePoint | None]] = {
    "best_level": best_level,
    "full": full,
    "halves": halves,
    "two_levels": two_levels,
}
"""Rule name -> the point it chooses from validation passes and every point searched on them (None: full size
alone)."""


def on_test(point: CascadePoint | None, test: LevelPasses) -> tuple[float, float]:
    """Test accuracy and speed against full size (1 / mean cost) of the chosen cascade."""
    if point is None:
        return test.level_accuracies[-1], 1.0
    accuracy, cost = test.replay(point.levels, point.thresholds)
    return accuracy, 1.0 / cost


def oracle(test: LevelPasses) -> tuple[float, float]:
    """The most accurate test point at `ORACLE_SPEED` or faster: a bound no validation rule can pass."""
    fast = [p for p in test.search(CANDIDATES, MAX_STEPS) if p.cost <= 1.0 / ORACLE_SPEED]
    if not fast:  # no level is that much cheaper than full size
        return test.level_accuracies[-1], 1.0
    best = max(fast, key=lambda p: (p.accuracy, -p.cost))
    return best.accuracy, 1.0 / best.cost


def evaluate(results: str) -> dict[str, list[dict]]:
    """task -> one row per trained model: its full-size test accuracy, the shipped setting, and each rule's result."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(results, "*", "*.passes.json"))):
        with open(path) as handle:
            record = json.load(handle)
        with open(path.replace(".passes.json", ".json")) as handle:
            run = json.load(handle)
        validation, test = passes_from(record["validation"]), passes_from(record["test"])
        row = {"seed": run["seed"], "full": test.level_accuracies[-1], "shipped": run["serving"], "rules": {}}
        points = validation.search(CANDIDATES, MAX_STEPS)
        for name, rule in RULES.items():
            point = rule(validation, points)
            accuracy, speed = on_test(point, test)
            chosen = "full size" if point is None else f"{point.levels} at {point.thresholds}"
            row["rules"][name] = {"accuracy": accuracy, "speed": speed, "chosen": chosen}
            if name == "best_level":  # the replay must choose what ICPCCallback shipped from the same passes
                shipped = (run["serving"]["levels"], run["serving"]["thresholds"])
                row["replays_shipped"] = point is not None and shipped == (point.levels, point.thresholds)
        row["oracle"] = dict(zip(("accuracy", "speed"), oracle(test)))
        rows[run["task"]].append(row)
    return rows


def summary(rows: list[dict], name: str) -> tuple[float, float]:
    """A rule's mean loss against each model's full size (points) and median speed, over a task's models."""
    picks = [r["oracle"] if name == "oracle" else r["rules"][name] for r in rows]
    loss = statistics.mean(100 * (r["full"] - p["accuracy"]) for r, p in zip(rows, picks))
    return loss, statistics.median(p["speed"] for p in picks)


def report(rows: dict[str, list[dict]], source: str = "benchmarks/results/cascade-passes/") -> str:
    """The rules' table; `source` names the folder of passes it was replayed from."""
    lines = [
        "# Cascade calibration rules, replayed on the same trained models",
        "",
        f"Written by `benchmarks/cascade_rules.py` from `{source}` (for the text round: the text default, "
        "`icpc importance constant`, rerun with each level's validation and test passes kept). The round's rule and "
        "outcome: [selection-rule.md](../reference/selection-rule.md#text-how-the-served-cascade-is-calibrated-"
        "issue-23-written-2026-12-01-before-any-of-its-runs).",
        "",
        "Loss: the cascade's test accuracy below the model's own full-size test accuracy, in points, mean over "
        "seeds. Speed: one over the cascade's mean cost on the test passes (measured time per level), median over "
        f"seeds. The oracle is the most accurate test point at {ORACLE_SPEED}x or faster, chosen on test. "
        "'Shipped, as timed': the cascade ICPCCallback shipped, run and timed against full size by the harness "
        "(the replayed `best_level` speed estimates the same figure from the per-level times).",
        "",
        "| task | models | full size (mean) | " + " | ".join(f"`{n}`: loss, speed" for n in [*RULES, "oracle"]) + " |",
        "|---|---|---|" + "---|" * (len(RULES) + 1),
    ]
    for task, models in rows.items():
        cells = [f"{loss:+.2f}, {speed:.2f}x" for loss, speed in (summary(models, n) for n in [*RULES, "oracle"])]
        full_mean = statistics.mean(r["full"] for r in models)
        lines.append(f"| {task} | {len(models)} | {full_mean:.4f} | " + " | ".join(cells) + " |")
    models = [r for task_rows in rows.values() for r in task_rows]
    same = sum(r["replays_shipped"] for r in models)
    lines += [
        "",
        f"`best_level` replayed chooses the cascade `ICPCCallback` shipped for {same} of {len(models)} models.",
    ]
    lines += ["", "Per model (test accuracy, speed, and the setting each rule chose on validation):", ""]
    lines += [
        "| task | seed | full size | shipped, as timed | " + " | ".join(f"`{n}`" for n in RULES) + " |",
        "|---|---|---|---|" + "---|" * len(RULES),
    ]
    for task, models in rows.items():
        for r in models:
            cells = [f"{p['accuracy']:.4f}, {p['speed']:.2f}x ({p['chosen']})" for p in r["rules"].values()]
            shipped = f"{r['shipped']['cascade_accuracy']:.4f}, {r['shipped'].get('speedup', 1.0):.2f}x"
            lines.append(f"| {task} | {r['seed']} | {r['full']:.4f} | {shipped} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=PASSES_RESULTS)
    parser.add_argument("--output", default=DOC)
    args = parser.parse_args(argv)
    source = os.path.relpath(args.results, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    text = report(evaluate(args.results), source if not source.startswith("..") else args.results)
    with open(args.output, "w") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
