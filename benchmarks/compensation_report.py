"""docs/results/compensation.md's results: the default arm shipped with level compensation and the held-out check,
against the stored run of the same arm and seed (the same trained model: training is deterministic).

    python benchmarks/compensation_report.py     # from benchmarks/results/compensation and .../convergence
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics

from harness import RESULT_DOCS, RESULTS, splice

STORED = os.path.join(RESULTS, "convergence")
NEW = os.path.join(RESULTS, "compensation")


def load(folder: str, task: str, arm_file: str) -> dict | None:
    path = os.path.join(folder, task, arm_file)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def baseline_best(task: str) -> float | None:
    """The plain Trainer's best test accuracy, mean over its stored seeds."""
    bests = []
    for path in sorted(glob.glob(os.path.join(STORED, task, "baseline-s*.json"))):
        with open(path) as handle:
            bests.append(max(point["served_accuracy"] for point in json.load(handle)["curve"]))
    return statistics.mean(bests) if bests else None


def fixed_level(task: str, level: str) -> float | None:
    """The best test accuracy a model trained at `level` alone reached there (stored fixed-level arms, mean)."""
    bests = []
    for path in sorted(glob.glob(os.path.join(STORED, task, "fixed-level-*.json"))):
        with open(path) as handle:
            run = json.load(handle)
        scores = [p["test"].get(level) for p in run["curve"] if level in p["test"]]
        if scores:
            bests.append(max(scores))
    return statistics.mean(bests) if bests else None


def pts(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def rows() -> list[dict]:
    found = []
    for path in sorted(glob.glob(os.path.join(NEW, "*", "*.json"))):
        if path.endswith(".passes.json"):
            continue
        with open(path) as handle:
            new = json.load(handle)
        old = load(STORED, new["task"], os.path.basename(path))
        found.append({"new": new, "old": old})
    return found


def levels_table(found: list[dict]) -> list[str]:
    lines = [
        "| task | seed | level | validation before | validation after | test after | trained at that level alone (test) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in found:
        new = row["new"]
        after = new.get("compensated_level_accuracy") or {}
        before = new["curve"][-1]["validation"]
        for level in sorted(before, key=float):
            if float(level) >= 1.0:
                continue
            alone = fixed_level(new["task"], level)
            validation = after.get("validation", {}).get(level)
            test = after.get("test", after).get(level) if isinstance(after.get("test", after), dict) else None
            lines.append(
                f"| {new['task']} | {new['seed']} | {float(level):.3f} | {before[level]:.4f} | "
                f"{'-' if validation is None else f'{validation:.4f}'} | {'-' if test is None else f'{test:.4f}'} | "
                f"{'-' if alone is None else f'{alone:.4f}'} |"
            )
    return lines


def shipped_table(found: list[dict]) -> list[str]:
    lines = [
        "| task | seed | curve repeats | baseline's best | full size | stored shipped: levels, accuracy, speed | "
        "new shipped: levels, accuracy, speed | held-out check | compensation s / training s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in found:
        new, old = row["new"], row["old"]
        served = new["serving"]
        repeats = "-" if old is None else ("yes" if old["curve"] == new["curve"] else "no (timings or data differ)")
        if old is not None and old["curve"] != new["curve"]:
            same = [
                p["test"] == q["test"] and p["validation"] == q["validation"]
                for p, q in zip(old["curve"], new["curve"])
            ]
            repeats = "accuracies yes" if all(same) else "no"
        old_served = (
            "-"
            if old is None
            else (
                f"{old['serving']['levels']}, {old['serving']['cascade_accuracy']:.4f}, {old['serving']['speedup']:.2f}x"
            )
        )
        check = new.get("ship_check") or {}
        verdict = (
            "-"
            if not check
            else ("ships" if check["ships"] else "refused")
            + (f" (bound {check['loss_bound']:.3f})" if check.get("loss_bound") is not None else "")
        )
        compensation = new.get("compensation") or {}
        best = baseline_best(new["task"])
        lines.append(
            f"| {new['task']} | {new['seed']} | {repeats} | {'-' if best is None else f'{best:.4f}'} | "
            f"{served['full_accuracy']:.4f} | {old_served} | "
            f"{[round(lv, 3) for lv in served['levels']]}, {served['cascade_accuracy']:.4f}, {served['speedup']:.2f}x | "
            f"{verdict} | {compensation.get('seconds', 0):.0f} / {new['train_seconds']:.0f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(RESULT_DOCS, "compensation.md"))
    args = parser.parse_args(argv)
    found = rows()
    if not found:
        raise SystemExit(f"No runs in {NEW}: nothing to report, {args.output} left as it is.")
    text = "\n".join(
        [
            f"Runs reported: {len(found)}. Accuracies are shares of the test (or validation) set; speeds are the "
            "shipped cascade's measured time against full size on test, timed alternately.",
            "",
            "### What shipped",
            "",
            *shipped_table(found),
            "",
            "### Each level before and after compensation",
            "",
            "Before: the last epoch's validation accuracy at that level (the curve). After: the same model once "
            "compensated. Trained alone: the stored fixed-level arm's best test accuracy at that level, where the task "
            "has one.",
            "",
            *levels_table(found),
        ]
    )
    if not splice(args.output, "compensation", text):
        raise SystemExit(f"{args.output} has no <!-- compensation:start --> / <!-- compensation:end --> markers.")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
