"""docs/results/convergence.md, its plots and the results index's time-to-accuracy table, from benchmarks/convergence.py's files.

python benchmarks/convergence_report.py            # from benchmarks/results/convergence
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import statistics
from collections import defaultdict

from harness import RESULT_DOCS, RESULTS, RESULTS_INDEX, pyplot, splice
from suite import PRETRAINED_TASKS, ROUNDS, TIE, TOLERANCE, Round

plt = pyplot()
BASELINE = "baseline"
SPEEDS = {
    "time_to_accuracy_speedup": "time-to-accuracy speedup",
    "speedup_within_one_error": "time-to-accuracy speedup to within one standard error of the baseline's best",
    "speedup_in_epochs": "time-to-accuracy speedup counted in epochs (the baseline's epochs to its best over the arm's)",
}
"""What each speed figure a round may rank candidates by is called in the report."""


def default_arms(task: str) -> tuple[str, ...]:
    """The arms whose settings are `ICPCConfig()`'s on `task`: its schedule with the default levels and the positions
    it resolves to (crop for a fresh table, interpolate for the pretrained ones of round 4), and with the importance
    scorer the Trainer flow uses by default (text)."""
    from icpc_hf import ICPCConfig
    from icpc_hf.registry import REGISTRY

    grid = REGISTRY["vit"].modality.default_schedule(ICPCConfig())
    text = REGISTRY["bert"].modality.default_schedule(ICPCConfig(text_scorer="importance"))
    positions = "interpolate" if task in PRETRAINED_TASKS else "crop"
    return f"icpc {grid} {positions}", "icpc importance" if text == "progressive" else f"icpc importance {text}"


def label(arm: str, task: str) -> str:
    return f"{arm} (= `ICPCConfig()`)" if arm in default_arms(task) else arm


def load(results: str) -> dict[str, dict[str, list[dict]]]:
    """task -> arm -> runs (one per seed, sorted by seed)."""
    runs: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(glob.glob(os.path.join(results, "*", "*.json"))):
        if path.endswith(".passes.json"):  # a run's per-level passes (benchmarks/cascade_rules.py), not a run
            continue
        with open(path) as handle:
            run = json.load(handle)
        runs[run["task"]][run["arm"]].append(run)
    for arms in runs.values():
        for seeds in arms.values():
            seeds.sort(key=lambda r: r["seed"])
    return runs


def first_reaching(run: dict, accuracy: float, unit: str = "train_seconds") -> float | None:
    """Where the first evaluation whose served accuracy reaches `accuracy` falls: its training seconds, or with
    `unit="epoch"` its epoch (None: never)."""
    return next((p[unit] for p in run["curve"] if p["served_accuracy"] >= accuracy - 1e-12), None)


def speedup_to(base: dict, run: dict, accuracy: float, unit: str = "train_seconds") -> float:
    """The baseline's seconds (or epochs) to `accuracy` over the arm's (0.0: the arm never reaches it)."""
    reached = first_reaching(run, accuracy, unit)
    return 0.0 if reached is None else first_reaching(base, accuracy, unit) / reached


def within_one_error(base: dict) -> float:
    """The baseline's best test accuracy less one standard error of it (binomial, over the test set): accuracies
    closer than that are not told apart by the test set."""
    best = max(p["served_accuracy"] for p in base["curve"])
    return best - math.sqrt(best * (1 - best) / base["test_size"])


def best_within(run: dict, seconds: float) -> float:
    """The best served accuracy an arm reached within a training time."""
    reached = [p["served_accuracy"] for p in run["curve"] if p["train_seconds"] <= seconds + 1e-9]
    return max(reached) if reached else float("nan")


def baseline_target(run: dict) -> tuple[float, float, int]:
    """The baseline's best test accuracy, the seconds it first reached it, and that epoch."""
    best = max(p["served_accuracy"] for p in run["curve"])
    point = next(p for p in run["curve"] if p["served_accuracy"] >= best)
    return best, point["train_seconds"], point["epoch"]


def arm_rows(arms: dict[str, list[dict]]) -> list[dict]:
    """Per arm, over the seeds both it and the baseline ran: medians of the paired figures."""
    baselines = {run["seed"]: run for run in arms[BASELINE]}
    rows = []
    for name, runs in arms.items():
        paired = [(baselines[r["seed"]], r) for r in runs if r["seed"] in baselines]
        if not paired:
            continue
        speedups, never, within, near, in_epochs = [], 0, [], [], []
        for base, run in paired:
            target, base_seconds, _ = baseline_target(base)
            speedups.append(speedup_to(base, run, target))
            in_epochs.append(speedup_to(base, run, target, unit="epoch"))
            never += speedups[-1] == 0.0
            within.append(best_within(run, base_seconds))
            near.append(speedup_to(base, run, within_one_error(base)))
        last = [r["curve"][-1] for _, r in paired]
        serving = [r["serving"] for _, r in paired]
        rows.append(
            {
                "arm": name,
                "seeds": len(paired),
                "note": runs[0].get("note", ""),
                "best_served": statistics.mean(max(p["served_accuracy"] for p in r["curve"]) for _, r in paired),
                "best_served_median": statistics.median(
                    max(p["served_accuracy"] for p in r["curve"]) for _, r in paired
                ),
                "best_full": statistics.mean(
                    max(p["test"].get("1", float("nan")) for p in r["curve"]) for _, r in paired
                ),
                "time_to_accuracy_speedup": statistics.median(speedups),
                "never": never,
                "per_seed": speedups,
                "speedup_within_one_error": statistics.median(near),
                "speedup_in_epochs": statistics.median(in_epochs),
                "best_within_baseline_time": statistics.mean(within),
                "train_seconds": statistics.median(r["train_seconds"] for _, r in paired),
                "token_ratio": statistics.median(r["token_ratio"] for _, r in paired),
                "final_served_level": statistics.median(float(p["served_level"]) for p in last),
                "cascade_accuracy": _mean_or_none([s.get("cascade_accuracy") for s in serving]),
                "cascade_speedup": statistics.median(s.get("speedup", 1.0) for s in serving),
                "cascade_flops_ratio": _mean_or_none([s.get("cascade_flops_ratio") for s in serving]),
            }
        )
    return rows


def by_name(rows: list[dict], arm: str) -> dict:
    return next(r for r in rows if r["arm"] == arm)


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def fmt(value, digits=4, suffix=""):
    if value is None:
        return "-"
    return f"{value:.{digits}f}{suffix}"


def plot(task: str, arms: dict[str, list[dict]], path: str) -> str:
    """Served test accuracy against training seconds (seed 0), every arm on one set of axes."""
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for index, (name, runs) in enumerate(sorted(arms.items(), key=lambda item: item[0] != BASELINE)):
        run = runs[0]
        style = dict(color="black", linewidth=2.2) if name == BASELINE else dict(color=f"C{index % 10}", linewidth=1.2)
        axes.plot(
            [p["train_seconds"] for p in run["curve"]],
            [p["served_accuracy"] for p in run["curve"]],
            label=name,
            **style,
        )
    base = arms[BASELINE][0]
    target, seconds, _ = baseline_target(base)
    axes.axhline(target, color="grey", linestyle=":", linewidth=1)
    axes.axvline(seconds, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("training seconds (evaluation excluded), seed 0")
    axes.set_ylabel("test accuracy as served")
    axes.set_title(f"{task}: accuracy against training time")
    low = min(p["served_accuracy"] for runs in arms.values() for p in runs[0]["curve"][len(runs[0]["curve"]) // 4 :])
    high = max(p["served_accuracy"] for runs in arms.values() for p in runs[0]["curve"])
    axes.set_ylim(max(0.0, low - 0.05), min(1.0, high + 0.02))
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def task_section(task: str, arms: dict[str, list[dict]], images: str, quick: bool) -> tuple[list[str], list[dict]]:
    rows = arm_rows(arms)
    base_runs = arms[BASELINE]
    first = base_runs[0]
    targets = [baseline_target(r) for r in base_runs]
    epochs = first["epochs"]
    lines = [
        f"## {task}",
        "",
        f"{first['train_size']} training samples, {first['validation_size']} validation (they choose the serving "
        f"level), {first['test_size']} test, {epochs} epochs, evaluated after each; {len(base_runs)} seed(s).",
        "",
        "Baseline's best test accuracy (per seed): "
        + ", ".join(f"{acc:.4f} at epoch {epoch} ({seconds:.0f} s)" for acc, seconds, epoch in targets)
        + f"; it trains {epochs} epochs in all, so it had "
        + (
            "stopped improving."
            if all(epoch <= epochs - 3 for _, _, epoch in targets)
            else "**not clearly stopped improving** in some seed (best within the last 3 epochs)."
        ),
        "",
    ]
    lines += [
        "| arm | time-to-accuracy speedup (median) | to within one standard error | best accuracy as served | "
        "best at full size | best within the baseline's time | training seconds (all epochs) | tokens vs full | "
        "final serving level | calibrated cascade: accuracy, speedup vs full size |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: -r["time_to_accuracy_speedup"]):
        speed = f"{row['time_to_accuracy_speedup']:.2f}x"
        if row["seeds"] > 1:
            speed += " (" + ", ".join(f"{v:.2f}x" if v else "never" for v in row["per_seed"]) + ")"
        cascade = (
            "-" if row["cascade_accuracy"] is None else f"{row['cascade_accuracy']:.4f}, {row['cascade_speedup']:.2f}x"
        )
        lines.append(
            f"| {label(row['arm'], task)} | {speed} | {row['speedup_within_one_error']:.2f}x | {fmt(row['best_served'])} | "
            f"{fmt(row['best_full'])} | "
            f"{fmt(row['best_within_baseline_time'])} | {row['train_seconds']:.0f} | "
            f"{row['token_ratio']:.2f} | {row['final_served_level']:.3g} | {cascade} |"
        )
    if not quick:
        os.makedirs(images, exist_ok=True)
        plot(task, arms, os.path.join(images, f"convergence-{task}.png"))
        lines += ["", f"![accuracy against training time, {task}](images/convergence-{task}.png)", ""]
    fastest = max(rows, key=lambda r: (r["time_to_accuracy_speedup"], r["best_served"]))
    accurate = max(rows, key=lambda r: r["best_served"])
    lines += [
        "",
        f"Fastest to the baseline's best accuracy: **{fastest['arm']}** "
        f"({fastest['time_to_accuracy_speedup']:.2f}x). Most accurate as served: **{accurate['arm']}** "
        f"({accurate['best_served']:.4f}, baseline {by_name(rows, BASELINE)['best_served']:.4f}).",
    ]
    # a note stored when an arm was the default says so; the default has moved since (text: 2026-11-30)
    notes = [
        f"- {r['arm']}: {r['note'] if r['arm'] in default_arms(task) else r['note'].removeprefix('`ICPCConfig()`: ')}"
        for r in rows
        if r["note"]
    ]
    return lines + ["", *notes, *floor_lines(arms), ""], rows


def floor_lines(arms: dict[str, list[dict]]) -> list[str]:
    """For an evaluation-driven arm: the floor each epoch drew from (level index, per seed), and the seconds of the
    Trainer's evaluations it counted as training time."""
    lines = []
    for arm, runs in arms.items():
        floored = [r for r in runs if r.get("epoch_floors")]
        if not floored:
            continue
        paths = "; ".join(
            "".join(str(r["epoch_floors"][e]) for e in sorted(r["epoch_floors"], key=int)) for r in floored
        )
        evaluating = statistics.median(r["trainer_eval_seconds"] / r["train_seconds"] for r in floored)
        lines.append(
            f"- {arm}: the floor (index of the smallest level drawn) epoch by epoch, per seed: {paths}. The Trainer's "
            f"evaluations that move it take {evaluating:.0%} of its training seconds (median)."
        )
    return lines


def accuracy_at_level(point: dict, level: float) -> float | None:
    """Validation accuracy at `level` in one evaluation point (levels are stored as rounded strings)."""
    return next((value for key, value in point["validation"].items() if abs(float(key) - level) < 1e-3), None)


def best_at_level(arm_runs: list[dict], level: float) -> float | None:
    """Best validation accuracy at `level` over epochs, mean over seeds; None where a run never evaluated it."""
    seeds = [
        max((v for v in (accuracy_at_level(p, level) for p in run["curve"]) if v is not None), default=None)
        for run in arm_runs
    ]
    return None if None in seeds else sum(seeds) / len(seeds)


def every_level(runs: dict[str, dict[str, list[dict]]]) -> list[str]:
    """Each ICPC arm at each fixed-level arm's level against that model: one model serving every level (part 3)."""
    rows = []
    for task in sorted(runs):
        for fixed_arm, fixed_runs in sorted(runs[task].items()):
            if not fixed_arm.startswith("fixed level"):
                continue
            level = float(fixed_arm.split()[-1])

            reference = best_at_level(fixed_runs, level)
            cells = []
            for arm, arm_runs in sorted(runs[task].items()):
                value = best_at_level(arm_runs, level) if arm.startswith("icpc") else None
                if value is not None:
                    gap = 100 * (value - reference)
                    seeds = "" if len(arm_runs) == len(fixed_runs) else f", {len(arm_runs)} seed(s)"
                    mark = "**" if gap < -1 else ""
                    cells.append(f"{label(arm, task)} {value:.3f} ({mark}{gap:+.1f}{mark}{seeds})")
            rows.append(f"| {task} | {level:g} | {reference:.3f} ({len(fixed_runs)}) | {'; '.join(cells)} |")
    if not rows:
        return []
    return [
        "## One model, every level",
        "",
        "Each ICPC model's best validation accuracy at a level (over epochs, mean over seeds) against a model "
        "trained at that level alone, on the tasks that have a fixed-level arm. The target is every level "
        "within 1 point (bold: more than 1 point below); a cascade can only answer cheaply at levels the "
        "model still serves well.",
        "",
        "| task | level | fixed-level model (seeds) | ICPC arms at that level (points against it) |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def apply_rule(sections: dict[str, list[dict]], rule: Round) -> tuple[str | None, list[str]]:
    """docs/reference/selection-rule.md, applied to one round: the candidate it chooses (None: none eligible) and the
    lines that show how."""
    from statistics import median

    def row(task: str, arm: str) -> dict | None:
        return next((r for r in sections.get(task, []) if r["arm"] == arm), None)

    def best(summary: dict) -> float:
        return summary["best_served_median"] if rule.over_seeds == "median" else summary["best_served"]

    def holds(task: str, arm: str) -> bool | None:
        """Within a point of the baseline's best (under-trained: at the baseline's wall time); None: not run."""
        mine, base = row(task, arm), row(task, BASELINE)
        if mine is None or base is None:
            return None
        reached = mine["best_within_baseline_time"] if rule.suite[task][1] == "under-trained" else best(mine)
        return reached >= best(base) - TOLERANCE - 1e-12

    choose = [t for t, (half, _) in rule.suite.items() if half == "choose"]
    confirm = [t for t, (half, _) in rule.suite.items() if half == "confirm"]
    reported = [t for t, (half, _) in rule.suite.items() if half == "reported"]
    lines = [
        f"## The default, chosen by the rule: {rule.title}",
        "",
        "[selection-rule.md](../reference/selection-rule.md), written before these runs, applied by this script: choose on "
        f"{', '.join(f'`{t}`' for t in choose)}"
        + (f"; confirm on {', '.join(f'`{t}`' for t in confirm)}" if confirm else "; no confirm half")
        + (f"; reported beside: {', '.join(f'`{t}`' for t in reported)}." if reported else "."),
        "",
        "| half | task | seeds | baseline's best | " + " | ".join(rule.candidates) + " |",
        "|---|---|---|---|" + "---|" * len(rule.candidates),
    ]
    for task in choose + confirm + reported:
        base = row(task, BASELINE)
        half = rule.suite[task][0]
        if base is None:
            lines.append(f"| {half} | {task} | 0 | not run | " + " | ".join("-" for _ in rule.candidates) + " |")
            continue
        cells = []
        for arm in rule.candidates:
            mine = row(task, arm)
            if mine is None:
                cells.append("not run")
                continue
            mark = "" if holds(task, arm) else " **(> 1 pt below)**"
            cells.append(
                f"{mine[rule.speed]:.2f}x, {best(mine):.4f}{mark}, served "
                f"{mine['cascade_speedup']:.2f}x, tokens {mine['token_ratio']:.2f}"
            )
        lines.append(f"| {half} | {task} | {base['seeds']} | {best(base):.4f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Each cell: {SPEEDS[rule.speed]} (median over seeds), best accuracy as served "
        f"({rule.over_seeds} over seeds), the calibrated cascade's measured speed against full size (median), the "
        "share of tokens trained on against full inputs (median).",
        "",
    ]
    scores = {}
    for arm in rule.candidates:
        verdicts = [holds(t, arm) for t in choose if rule.suite[t][1] == "data-limited"]
        if None in verdicts or not all(verdicts):
            reason = "not run on every choose-half task" if None in verdicts else "more than 1 point below"
            lines.append(f"- {arm}: not eligible ({reason}).")
            continue
        scores[arm] = (
            median(row(t, arm)[rule.speed] for t in choose),
            median(row(t, arm)["cascade_speedup"] for t in choose),
        )
        lines.append(
            f"- {arm}: eligible; median {SPEEDS[rule.speed]} over the choose half "
            f"{scores[arm][0]:.2f}x (served {scores[arm][1]:.2f}x)."
        )

    def accurate(task: str, arm: str) -> float | None:
        mine = row(task, arm)
        return None if mine is None else best(mine)

    def above_incumbent(task: str, arm: str) -> bool | None:
        mine, incumbent = accurate(task, arm), accurate(task, rule.incumbent)
        return None if mine is None or incumbent is None else mine > incumbent

    if scores:
        top = max(speed for speed, _ in scores.values())
        tied = [arm for arm, (speed, _) in scores.items() if speed >= top - TIE]
        chosen = max(tied, key=lambda arm: scores[arm][1])
    elif rule.fallback_margin is None:
        lines += ["", f"No candidate is eligible: the default stays {rule.incumbent}.", ""]
        return None, lines
    else:
        run = [arm for arm in rule.candidates if all(accurate(t, arm) is not None for t in choose)]
        if rule.incumbent not in run:
            lines += ["", f"Not run on every choose-half task yet: the default stays {rule.incumbent}.", ""]
            return None, lines
        chosen = max(run, key=lambda arm: median(accurate(t, arm) for t in choose))
        margin = median(accurate(t, chosen) - accurate(t, rule.incumbent) for t in choose)
        if chosen == rule.incumbent or margin <= rule.fallback_margin:
            lines += [
                "",
                f"No candidate is eligible or more than {rule.fallback_margin * 100:.0f} points above "
                f"{rule.incumbent}: the default stays.",
                "",
            ]
            return None, lines
        lines.append(
            f"- No candidate is eligible; the most accurate, {chosen}, is {margin * 100:.1f} points above "
            f"{rule.incumbent} (the rule asks for more than {rule.fallback_margin * 100:.0f})."
        )

    def holds_and_keeps_pace(task: str, arm: str) -> bool | None:
        within, incumbent = holds(task, arm), row(task, rule.incumbent)
        if within is None or incumbent is None:
            return None
        return within and row(task, arm)[rule.speed] >= incumbent[rule.speed] - TIE

    confirmed = (
        holds_and_keeps_pace if rule.confirm_decides else holds if rule.fallback_margin is None else above_incumbent
    )
    failed = [t for t in confirm if confirmed(t, chosen) is False]
    unrun = [t for t in confirm if confirmed(t, chosen) is None]
    confirmation = (
        "No confirm half in this round."
        if not confirm
        else "Confirmation: "
        + (f"it does not hold on {', '.join(failed)}" if failed else "it holds on every confirm-half task that ran")
        + (f"; not run yet: {', '.join(unrun)}" if unrun else "")
        + (f" (to hold: above {rule.incumbent}'s best accuracy)" if rule.fallback_margin is not None else "")
        + (
            f" (to hold: within a point of the baseline and at least as fast as {rule.incumbent})"
            if rule.confirm_decides
            else ""
        )
        + "."
    )
    if rule.confirm_decides and chosen != rule.incumbent and (failed or unrun or not confirm):
        lines += [
            "",
            f"**Picked on the choose half: {chosen}.** {confirmation} This round switches only on a confirmation on "
            f"every confirm task: **the default stays {rule.incumbent}.**",
            "",
        ]
        return rule.incumbent, lines
    lines += ["", f"**Chosen: {chosen}.** {confirmation}", ""]
    return chosen, lines


def round_of(task: str) -> Round | None:
    """The round whose suite holds `task` (None: reported beside the suites)."""
    return next((rule for rule in ROUNDS if task in rule.suite), None)


def headline(sections: dict[str, list[dict]]) -> str:
    """The results index's table (docs/results/README.md): per task, the candidate schedules (suite tasks) or the ICPC arms (the others)."""
    lines = [
        "| task | suite half, regime | seeds | baseline's best | arm | time-to-accuracy speedup | "
        "best accuracy as served | as shipped: accuracy, speed vs full size |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def order(task: str) -> tuple:
        rule = round_of(task)
        return (
            rule is None,
            ROUNDS.index(rule) if rule else 0,
            rule is not None and rule.suite[task][0] != "choose",
            task,
        )

    for task in sorted(sections, key=order):
        rows = sections[task]
        base = by_name(rows, BASELINE)
        rules = [rule for rule in ROUNDS if task in rule.suite]
        halves = "/".join(dict.fromkeys(rule.suite[task][0] for rule in rules))  # once each, in round order
        half = f"{halves}, {rules[0].suite[task][1]}" if rules else "beside the suite"
        candidates = {arm for rule in rules for arm in rule.candidates}
        shown = [r for r in rows if (r["arm"] in candidates if rules else r["arm"].startswith("icpc"))]
        for row in sorted(shown, key=lambda r: -r["time_to_accuracy_speedup"]):
            cascade = (
                "-"
                if row["cascade_accuracy"] is None
                else f"{row['cascade_accuracy']:.4f}, {row['cascade_speedup']:.2f}x"
            )
            never = f" ({row['never']}/{row['seeds']} never)" if row["never"] else ""
            lines.append(
                f"| {task} | {half} | {row['seeds']} | {base['best_served']:.4f} | {label(row['arm'], task)} | "
                f"{row['time_to_accuracy_speedup']:.2f}x{never} | {row['best_served']:.4f} | {cascade} |"
            )
    return "\n".join(lines)


RUN_COUNT = re.compile(r"<!-- runs reported: (\d+) -->")
"""The marker a page carries of how many runs it was written from, so a later report can tell it holds fewer."""


def run_count(runs: dict[str, dict[str, list[dict]]]) -> int:
    return sum(len(seeds) for arms in runs.values() for seeds in arms.values())


def run_count_marker(runs: dict[str, dict[str, list[dict]]]) -> str:
    return f"<!-- runs reported: {run_count(runs)} -->"


def refuse_emptier_page(output: str, results: str, runs: dict[str, dict[str, list[dict]]], force: bool) -> None:
    """Refuse to write a page from no runs, or from fewer runs than the page already there reports (`--force` for a
    deliberate shrink): a report pointed at the wrong folder must not overwrite the record with tables of "not run"."""
    if not any(BASELINE in arms for arms in runs.values()):
        raise SystemExit(
            f"No task in {results} has a baseline run: there is nothing to report, and {output} was left as it is. "
            "Point --results at a folder of benchmarks/convergence.py runs (one sub-folder per task)."
        )
    if force or not os.path.exists(output):
        return
    with open(output) as handle:
        found = RUN_COUNT.search(handle.read())
    if found is not None and run_count(runs) < int(found.group(1)):
        raise SystemExit(
            f"{results} holds {run_count(runs)} runs, fewer than the {found.group(1)} that {output} reports: left as "
            "it is. Point --results at the complete folder, or pass --force to write the smaller page on purpose."
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=os.path.join(RESULTS, "convergence"))
    parser.add_argument(
        "--output", default=None, help="default: docs/results/convergence.md (or RESULTS/convergence.md with --quick)"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--force", action="store_true", help="write the page even when it holds fewer runs than the one there"
    )
    args = parser.parse_args(argv)
    output = args.output or (
        os.path.join(args.results, "convergence.md") if args.quick else os.path.join(RESULT_DOCS, "convergence.md")
    )
    runs = load(args.results)
    refuse_emptier_page(output, args.results, runs, args.force)
    lines = [
        "# Time to accuracy",
        "",
        "Written by `benchmarks/convergence_report.py` from `benchmarks/results/convergence/` (run "
        "`python3 benchmarks/convergence.py`). Every arm trains the same model from the same weights on the same "
        "data, batch size, optimiser and epochs; after every epoch the clock stops and the model is evaluated. "
        "*As served*: the test accuracy at the level that is best on the validation half (the baseline and "
        "PatchDropout serve at full size). *Time-to-accuracy speedup*: the seconds the baseline needs to reach "
        "its best test accuracy over the seconds the arm needs to reach it as served, median over seeds "
        "(a seed that never reaches it counts as 0; each seed's figure in brackets). *To within one standard "
        "error*: the same, for the baseline's best less one binomial standard error over the test set (the "
        "accuracies a test set this size does not tell apart; median over seeds). *Best within the baseline's "
        "time*: the best an arm served in the seconds the baseline took to its best. *Calibrated cascade*: in "
        "runs from 2026-11-30 on, the cascade ICPCCallback ships (calibrated on the validation half against "
        "measured time per level, every training level a candidate); in earlier runs, one calibrated by the "
        "benchmark over three levels against estimated FLOPs.",
        "",
    ]
    sections = {}
    suite_lines_at = len(lines)
    for task in sorted(runs):
        if BASELINE not in runs[task]:
            continue
        section, rows = task_section(task, runs[task], os.path.join(os.path.dirname(output), "images"), args.quick)
        lines += section
        sections[task] = rows
    rule_lines = [line for rule in ROUNDS for line in apply_rule(sections, rule)[1]]
    lines[suite_lines_at:suite_lines_at] = rule_lines + every_level(runs)
    lines.insert(1, run_count_marker(runs))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    if not args.quick and sections:
        splice(RESULTS_INDEX, "convergence", headline(sections))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
