"""Cascade calibration rules replayed offline on the level passes the convergence runs keep.

    python benchmarks/cascade_rules.py            # benchmarks/results/cascade-passes -> docs/results/cascade-rules.md
    python benchmarks/cascade_rules.py --results benchmarks/results/calibration-size \\
        --baselines benchmarks/results/convergence --output docs/results/calibration-size.md

Each rule chooses a cascade (levels and thresholds) from a trained model's passes over the validation half; the
choice is then replayed on the same model's passes over the test half. Every rule sees the same models, so their
differences are the rules' alone. The round's text: docs/results/selection-rounds.md ("how the served cascade is
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


def replayed(point: CascadePoint | None, test: LevelPasses) -> dict:
    """What a chosen cascade does on test: accuracy, speed (`on_test`) and the setting, for the report."""
    accuracy, speed = on_test(point, test)
    chosen = "full size" if point is None else f"{point.levels} at {point.thresholds}"
    return {"accuracy": accuracy, "speed": speed, "chosen": chosen}


def replayed_cell(pick: dict) -> str:
    """One model's cell in the per-model tables: test accuracy, speed, and the setting chosen."""
    return f"{pick['accuracy']:.4f}, {pick['speed']:.2f}x ({pick['chosen']})"


def oracle(test: LevelPasses) -> tuple[float, float]:
    """The most accurate test point at `ORACLE_SPEED` or faster: a bound no validation rule can pass."""
    fast = [p for p in test.search(CANDIDATES, MAX_STEPS) if p.cost <= 1.0 / ORACLE_SPEED]
    if not fast:  # no level is that much cheaper than full size
        return test.level_accuracies[-1], 1.0
    best = max(fast, key=lambda p: (p.accuracy, -p.cost))
    return best.accuracy, 1.0 / best.cost


def joined(parts: list[LevelPasses]) -> LevelPasses:
    """Passes over several sets of samples (at the same levels) as one."""
    return LevelPasses(
        parts[0].levels,
        [torch.cat(probs) for probs in zip(*(p.probabilities for p in parts))],
        [torch.cat(costs) for costs in zip(*(p.costs for p in parts))],
        torch.cat([p.labels for p in parts]),
    )


def label_balanced(passes: LevelPasses) -> LevelPasses:
    """Every label weighing the same: each label's rows repeated, in turn, up to the largest label's count."""
    rows = [torch.nonzero(passes.labels == label).flatten() for label in passes.labels.unique()]
    most = max(len(r) for r in rows)
    return subset(passes, torch.cat([r[torch.arange(most) % len(r)] for r in rows]))


def with_costs(passes: LevelPasses, costs: list[list[float]]) -> LevelPasses:
    return LevelPasses(
        passes.levels, passes.probabilities, [torch.tensor(c, dtype=torch.float64) for c in costs], passes.labels
    )


def calibration_sets(record: dict, validation: LevelPasses) -> dict[str, LevelPasses]:
    """The sets the calibration-size round calibrates `best_level` on (runs with reserve passes only): the
    `validation` half (as read from `record`), and `large`, validation and reserve together with every label weighing
    the same; each with measured-time costs and with FLOPs-estimated ones."""
    reserve = passes_from(record["reserve"])
    flops = [
        with_costs(validation, record["validation_flops_costs"]),
        with_costs(reserve, record["reserve_flops_costs"]),
    ]
    return {
        "validation": validation,
        "large": label_balanced(joined([validation, reserve])),
        "validation, FLOPs": flops[0],
        "large, FLOPs": label_balanced(joined(flops)),
    }


def evaluate(results: str) -> dict[tuple[str, str], list[dict]]:
    """(task, arm) -> one row per trained model: its full-size test accuracy, the shipped setting, each rule's result,
    and (runs with reserve passes) `best_level`'s on each calibration set."""
    rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
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
            row["rules"][name] = replayed(point, test)
            if name == "best_level":  # the replay must choose what ICPCCallback shipped from the same passes
                shipped = (run["serving"]["levels"], run["serving"]["thresholds"])
                row["replays_shipped"] = point is not None and shipped == (point.levels, point.thresholds)
        row["oracle"] = dict(zip(("accuracy", "speed"), oracle(test)))
        if "reserve" in record:
            row["sets"] = {}
            for name, passes in calibration_sets(record, validation).items():
                searched = points if passes is validation else passes.search(CANDIDATES, MAX_STEPS)
                row["sets"][name] = {**replayed(best_level(passes, searched), test), "size": len(passes.labels)}
        rows[run["task"], run.get("arm", "")].append(row)
    return rows


def summary(rows: list[dict], name: str, kind: str = "rules") -> tuple[float, float]:
    """A rule's (`kind="sets"`: a calibration set's) mean loss against each model's full size (points) and median
    speed, over a task's models."""
    picks = [r["oracle"] if name == "oracle" else r[kind][name] for r in rows]
    loss = statistics.mean(100 * (r["full"] - p["accuracy"]) for r, p in zip(rows, picks))
    return loss, statistics.median(p["speed"] for p in picks)


RULE_LINKS = (
    "[how the served cascade is calibrated](selection-rounds.md#text-how-the-served-cascade-is-calibrated-"
    "issue-23-written-2026-12-01-before-any-of-its-runs), [calibrating it on more held-out texts]"
    "(selection-rounds.md#text-calibrating-the-served-cascade-on-more-held-out-texts-issue-23-written-"
    "2026-12-01-before-any-of-its-runs)"
)


def baseline_bests(baselines: str) -> dict[str, float]:
    """task -> the plain Trainer's best test accuracy, median over its seeds, from the convergence results in
    `baselines` (the issue's reference for the shipped cascade)."""
    import convergence_report

    runs = convergence_report.load(baselines)
    return {
        task: statistics.median(convergence_report.baseline_target(run)[0] for run in arms[convergence_report.BASELINE])
        for task, arms in runs.items()
        if arms.get(convergence_report.BASELINE)
    }


def sets_lines(rows: dict[tuple[str, str], list[dict]], bests: dict[str, float]) -> list[str]:
    """The calibration-size round's tables: `best_level` calibrated on each set, replayed on test."""
    with_sets = {key: models for key, models in rows.items() if all("sets" in r for r in models)}
    if not with_sets:
        return []
    names = list(next(iter(with_sets.values()))[0]["sets"])
    lines = [
        "",
        "## `best_level` calibrated on more held-out texts",
        "",
        "`validation`: the validation half (what ICPCCallback calibrated on); `large`: validation and the task's "
        "reserve together, every label weighing the same; `FLOPs`: with FLOPs-estimated costs instead of measured "
        "times. Loss and speed as above (speed always from the test passes' measured times). Against the plain "
        "Trainer: the cascade's mean test accuracy below the baseline's best (median over its seeds), in points.",
        "",
        "| task | arm | models | calibration texts | "
        + " | ".join(f"`{n}`: loss, speed" for n in names)
        + " | below the plain Trainer's best: `validation`, `large` |",
        "|---|---|---|---|" + "---|" * (len(names) + 1),
    ]
    for (task, arm), models in with_sets.items():
        cells = [f"{loss:+.2f}, {speed:.2f}x" for loss, speed in (summary(models, n, "sets") for n in names)]
        sizes = "/".join(str(models[0]["sets"][n]["size"]) for n in ("validation", "large"))
        below = "n/a"
        if task in bests:
            gaps = [
                100 * (bests[task] - statistics.mean(r["sets"][n]["accuracy"] for r in models))
                for n in ("validation", "large")
            ]
            below = ", ".join(f"{round(gap, 2) + 0.0:+.2f}" for gap in gaps)  # no "-0.00"
        lines.append(f"| {task} | {arm} | {len(models)} | {sizes} | " + " | ".join(cells) + f" | {below} |")
    lines += [
        "",
        "| task | seed | full size | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for (task, _), models in with_sets.items():
        for r in models:
            cells = [replayed_cell(p) for p in r["sets"].values()]
            lines.append(f"| {task} | {r['seed']} | {r['full']:.4f} | " + " | ".join(cells) + " |")
    return lines


def report(
    rows: dict[tuple[str, str], list[dict]],
    source: str = "benchmarks/results/cascade-passes/",
    bests: dict[str, float] | None = None,
) -> str:
    """The rules' tables; `source` names the folder of passes it was replayed from, `bests` the plain Trainer's best
    per task (`baseline_bests`)."""
    lines = [
        "# Cascade calibration rules, replayed on the same trained models",
        "",
        f"Written by `benchmarks/cascade_rules.py` from `{source}`: ICPC models trained by "
        "`benchmarks/convergence.py`, each level's validation and test passes kept. The rounds' rules and outcomes: "
        f"{RULE_LINKS}.",
        "",
        "Loss: the cascade's test accuracy below the model's own full-size test accuracy, in points, mean over "
        "seeds. Speed: one over the cascade's mean cost on the test passes (measured time per level), median over "
        f"seeds. The oracle is the most accurate test point at {ORACLE_SPEED}x or faster, chosen on test. "
        "'Shipped, as timed': the cascade ICPCCallback shipped, run and timed against full size by the harness "
        "(the replayed `best_level` speed estimates the same figure from the per-level times).",
        "",
        "| task | arm | models | full size (mean) | "
        + " | ".join(f"`{n}`: loss, speed" for n in [*RULES, "oracle"])
        + " |",
        "|---|---|---|---|" + "---|" * (len(RULES) + 1),
    ]
    for (task, arm), models in rows.items():
        cells = [f"{loss:+.2f}, {speed:.2f}x" for loss, speed in (summary(models, n) for n in [*RULES, "oracle"])]
        full_mean = statistics.mean(r["full"] for r in models)
        lines.append(f"| {task} | {arm} | {len(models)} | {full_mean:.4f} | " + " | ".join(cells) + " |")
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
    for (task, _), models in rows.items():
        for r in models:
            cells = [replayed_cell(p) for p in r["rules"].values()]
            shipped = f"{r['shipped']['cascade_accuracy']:.4f}, {r['shipped'].get('speedup', 1.0):.2f}x"
            lines.append(f"| {task} | {r['seed']} | {r['full']:.4f} | {shipped} | " + " | ".join(cells) + " |")
    lines += sets_lines(rows, bests or {})
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=PASSES_RESULTS)
    parser.add_argument("--output", default=DOC)
    parser.add_argument(
        "--baselines", default=None, help="convergence results holding the baseline runs (default: --results)"
    )
    args = parser.parse_args(argv)
    source = os.path.relpath(args.results, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    bests = baseline_bests(args.baselines or args.results)
    text = report(evaluate(args.results), source if not source.startswith("..") else args.results, bests)
    with open(args.output, "w") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
