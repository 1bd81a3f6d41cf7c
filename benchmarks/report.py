"""docs/results/benchmarks.md and its plots, from the JSON results of benchmarks/run.py (and compile_levels.py)."""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics

from harness import RESULT_DOCS, RESULTS, RESULTS_INDEX, pyplot, splice

plt = pyplot()

TARGETS = {  # training speedup, cascade speedup (images), from the project's targets
    "image": {"train_speedup": 2.9, "cascade_speedup": 2.6},
    "text": {"train_speedup": 1.5},
    "audio": {"train_speedup": 2.0},
    "video": {"train_speedup": 2.0},
}


NOTES = [
    "## Reading these results",
    "",
    "- Every model here is small and trained from scratch on a CPU for a few epochs (no pretrained ViT, AST or "
    "VideoMAE is available offline); the text model is the only pretrained one. Under-trained models are rarely "
    "90% sure, so the cascade at its default threshold of 0.9 re-runs most samples; thresholds chosen on "
    "validation (the calibrated cascades) are the fair way to use it.",
    "- The level weights decide the speedup: training speed follows the estimated FLOP reduction where the "
    "efficiency row is near 1, so a 2.9x speedup needs about a third of the FLOPs. The image task draws its smallest "
    "level (12 of 28 pixels) for 70% of the samples; its model is then most accurate at that level, which is where "
    "its calibrated cascade answers, and less accurate at full size, which it saw for 15% of the samples. The "
    "ablation `levels drawn uniformly` shows the other side of that trade.",
    "- Text: the baseline is a plain Trainer with `train_sampling_strategy='group_by_length'`, because the ICPC "
    "arm groups its batches by length too; without it the baseline pads random batches and is about 2.5x slower "
    "(the ablation row `baseline without group_by_length`), which would credit ICPC with a gain that is not its own.",
    "- Peak memory is the process's resident high-water mark during training above its level at the start, after "
    "freed heap is returned to the system (VmHWM). ICPC's peak is set by its largest batches, which are full-size "
    "whenever level 1.0 is drawn, so compression lowers the average memory more than the peak.",
    "- Each modality runs in one process, one arm after the other, using every core (see the machine line); "
    "ratios of the two arms of a seed are the figures to read, medians over seeds.",
    "",
]


HOW_TO_RUN = [
    "## How to run the benchmarks",
    "",
    "```bash",
    "python3 benchmarks/run.py                 # fixed epochs, ICPC beside a plain Trainer: this page, results index table",
    "python3 benchmarks/run.py --quick --output /tmp/bench      # seconds per modality (CI); the report in /tmp/bench",
    "python3 benchmarks/report.py              # this page again from benchmarks/results/*.json",
    "python3 benchmarks/convergence.py         # time to accuracy: convergence.md (--tasks, --arms, --seeds, --quick)",
    "python3 benchmarks/convergence_report.py  # convergence.md again from benchmarks/results/convergence/",
    "python3 benchmarks/streams.py             # text from a stream against map-style data: streams.md",
    "python3 benchmarks/device.py --quick --output /tmp/device  # CPU path against device path (device.md)",
    "python3 benchmarks/compile_levels.py      # torch.compile with changing levels (the section below)",
    "```",
    "",
    "Both training benchmarks are built on `benchmarks/harness.py`: a `Task` record (data, a same-weights model "
    "factory, the training settings every arm shares, and for time to accuracy its arms and evaluation levels), an "
    "`Arm` record (ICPC settings or `None` for the plain Trainer, an optional hook on the fresh model for a peer or "
    "an ablation, Trainer overrides, the levels it is evaluated at), `train_arm` (one measured training run), "
    "`served` (the cascade as the model serves it against its full-size inference, timed alternately) and `splice` "
    "(the generated tables of docs/results/README.md). Every task is a record in `benchmarks/tasks.py`: `SIDE_BY_SIDE` for "
    "`run.py`, `TIME_TO_ACCURACY` for `convergence.py`; adding a task is one builder there. Which modality a model "
    "is, and so which ablations and peers apply, is asked of the registry (`icpc_hf.registration_for`).",
    "",
]


def mean_spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def short_settings(icpc: dict) -> dict:
    """The ICPC settings with long word lists counted rather than printed."""
    return {k: (f"{len(v)} words" if k == "stop_words" and v else v) for k, v in icpc.items()}


def baseline_settings(result: dict) -> str:
    extra = result.get("baseline_args") or {}
    return "".join(f", {k}={v}" for k, v in extra.items())


def median(rows, key):
    return statistics.median(r[key] for r in rows)


STEP_PHASES = {
    "batch": "fetch and collate the batch",
    "forward_backward": "forward + backward (+ gradient clipping)",
    "optimizer": "optimizer step",
    "other": "scheduler, zero_grad, callbacks",
}


def step_anatomy(rows: list[dict]) -> list[str]:
    """Where a training step's time goes in each arm: the phases that do not shrink with the input bound the
    speedup however many FLOPs compression saves."""
    if "step_ms_baseline" not in rows[0]:
        return []

    def phase(arm, name):
        return statistics.median(r[f"step_ms_{arm}"][name] for r in rows)

    lines = [
        "Where a training step's time goes (mean ms per step, median over seeds):",
        "",
        "| phase | baseline | ICPC | baseline / ICPC |",
        "|---|---|---|---|",
    ]
    totals = {arm: sum(phase(arm, name) for name in STEP_PHASES) for arm in ("baseline", "icpc")}
    for name, label in STEP_PHASES.items():
        base, icpc = phase("baseline", name), phase("icpc", name)
        lines.append(f"| {label} | {base:.1f} | {icpc:.1f} | {base / icpc:.2f} |")
    lines.append(
        f"| whole step | {totals['baseline']:.1f} | {totals['icpc']:.1f} | {totals['baseline'] / totals['icpc']:.2f} |"
    )
    fixed = phase("icpc", "optimizer") + phase("icpc", "other")
    lines += [
        "",
        f"Forward and backward run {median(rows, 'forward_backward_speedup'):.2f}x faster for a "
        f"{median(rows, 'train_flop_reduction'):.2f}x FLOP reduction; the optimizer step and the rest, which "
        f"compression cannot shrink, take {fixed / totals['icpc']:.0%} of an ICPC step.",
        "",
    ]
    return lines


def modality_section(result: dict, plots: str) -> list[str]:
    name, rows = result["modality"], result["seeds"]
    lines = [
        f"## {name}",
        "",
        f"{result['train_size']} training and {result['test_size']} test samples, {result['epochs']} epochs, "
        f"batch {result['batch_size']}, {len(rows)} seed(s); ICPC settings "
        f"`{json.dumps(short_settings(result['icpc']))}`. "
        f"Whole run: {result['wall_seconds'] / 60:.1f} min.",
        "",
        f"| | baseline (plain Trainer{baseline_settings(result)}) | ICPC |",
        "|---|---|---|",
        f"| test accuracy (mean ± sd over seeds) | {mean_spread([r['baseline_accuracy'] for r in rows])} | "
        f"{mean_spread([r['icpc_accuracy'] for r in rows])} |",
        f"| training wall time, s (median) | {median(rows, 'baseline_train_seconds'):.1f} | "
        f"{median(rows, 'icpc_train_seconds'):.1f} |",
        f"| epoch wall time, s (median; ICPC: compressed epochs) | {median(rows, 'baseline_epoch_seconds'):.2f} | "
        f"{median(rows, 'icpc_epoch_seconds'):.2f} |",
        f"| tokens per sample vs full (training) | 1.00 | {median(rows, 'train_token_ratio'):.3f} |",
        f"| collator share of training time | {median(rows, 'collator_share_baseline'):.2%} | "
        f"{median(rows, 'collator_share_icpc'):.2%} |",
        f"| peak memory during training, MB above start | {median(rows, 'peak_memory_mb_baseline'):.0f} | "
        f"{median(rows, 'peak_memory_mb_icpc'):.0f} |",
        "",
        "| ratio (median over seeds) | measured | target |",
        "|---|---|---|",
    ]
    target = TARGETS.get(name, {})

    def row(label, key, goal=None):
        goal_text = f"≥ {goal}" if goal else ""
        return f"| {label} | {median(rows, key):.2f} | {goal_text} |"

    lines += [
        row("training speedup (whole run)", "train_speedup", target.get("train_speedup")),
        row("training speedup (compressed epochs)", "compressed_epoch_speedup"),
        row("training FLOP reduction (estimated)", "train_flop_reduction"),
        row("training efficiency = speedup / FLOP reduction", "train_efficiency", 0.9),
        row("cascade speedup vs full-size inference", "cascade_speedup", target.get("cascade_speedup")),
        row("cascade FLOPs vs full (estimated)", "cascade_flops_ratio"),
        row("cascade efficiency = speedup x FLOPs ratio", "cascade_efficiency", 0.9),
        "",
        f"Cascade accuracy {mean_spread([r['cascade_accuracy'] for r in rows])} against full-size "
        f"{mean_spread([r['icpc_accuracy'] for r in rows])} (same ICPC model), cascade levels "
        f"{[round(x, 3) for x in rows[0]['cascade_levels']]}.",
        "",
    ]
    lines += step_anatomy(rows)
    if rows[0].get("tta"):
        lines += [
            "Test-time augmentation on the ICPC model (seed 0; cost = estimated FLOPs as a fraction of one "
            "full-size pass; `tta` runs every training level that fits the budget, cheapest first, and "
            "averages the probabilities; `cascade+tta` stops early when the running average is confident):",
            "",
            "| mode | budget | accuracy | cost | levels used per sample |",
            "|---|---|---|---|---|",
            f"| full size only | 1.0 | {rows[0]['icpc_accuracy']:.4f} | 1.00 | 1 |",
            f"| plain cascade | | {rows[0]['cascade_accuracy']:.4f} | {rows[0]['cascade_flops_ratio']:.2f} | |",
        ]
        lines += [
            f"| {t['mode']} | {t['budget']} | {t['accuracy']:.4f} | {t['cost']:.2f} | {t['levels_used']:.2f} |"
            for t in rows[0]["tta"]
            if "accuracy" in t
        ]
        lines.append("")
    levels = sorted(rows[0]["icpc_accuracy_per_level"], key=float)
    lines += [
        "Accuracy of the ICPC model at each single level (seed 0): "
        + ", ".join(f"{float(lv):.3g}: {rows[0]['icpc_accuracy_per_level'][lv]:.4f}" for lv in levels),
        "",
    ]
    figure, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].bar(
        ["baseline", "ICPC"],
        [median(rows, "baseline_train_seconds"), median(rows, "icpc_train_seconds")],
        color=["grey", "C0"],
    )
    axes[0].set_ylabel("training seconds")
    axes[1].plot(
        [float(lv) for lv in levels],
        [rows[0]["icpc_accuracy_per_level"][lv] for lv in levels],
        "o-",
        label="ICPC model",
    )
    axes[1].axhline(
        statistics.mean(r["baseline_accuracy"] for r in rows), color="grey", linestyle="--", label="baseline, full size"
    )
    axes[1].set_xlabel("level")
    axes[1].set_ylabel("test accuracy")
    axes[1].legend(fontsize=7)
    figure.suptitle(name)
    figure.tight_layout()
    path = os.path.join(plots, f"benchmark-{name}.png")
    figure.savefig(path, dpi=110)
    plt.close(figure)
    lines += [f"![{name}](images/{os.path.basename(path)})", ""]
    if "ablations" in result:
        lines += [
            "### Ablations (seed 0): accuracy at each level of models trained each way",
            "",
            "Same seed, data and epochs as the main runs; (main run) marks the ICPC arm of seed 0 itself.",
            "",
            "| training | train s | tokens vs full | " + " | ".join(f"level {float(lv):.3g}" for lv in levels) + " |",
            "|---|---|---|" + "---|" * len(levels),
        ]
        figure, axis = plt.subplots(figsize=(5, 3))
        for variant, data in result["ablations"].items():
            per_level = data["accuracy_per_level"]
            cells = [f"{per_level[lv]:.4f}" if lv in per_level else "" for lv in levels]
            label = f"{variant} (main run)" if data.get("main_run") else variant
            lines.append(
                f"| {label} | {data['train_seconds']:.1f} | {data.get('token_ratio', 1.0):.2f} | "
                + " | ".join(cells)
                + " |"
            )
            xs = sorted(per_level, key=float)
            axis.plot([float(x) for x in xs], [per_level[x] for x in xs], "o-", label=variant)
        axis.set_xlabel("level")
        axis.set_ylabel("test accuracy")
        axis.legend(fontsize=7)
        figure.tight_layout()
        path = os.path.join(plots, f"ablation-{name}.png")
        figure.savefig(path, dpi=110)
        plt.close(figure)
        lines += ["", f"![ablation {name}](images/{os.path.basename(path)})", ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=RESULTS)
    parser.add_argument("--output", default=os.path.join(RESULT_DOCS, "benchmarks.md"))
    parser.add_argument("--quick", action="store_true", help="report the quick (CI) results instead")
    args = parser.parse_args(argv)
    plots = os.path.join(os.path.dirname(args.output), "images")
    os.makedirs(plots, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    results = [
        json.load(open(p))
        for p in sorted(glob.glob(os.path.join(args.results, f"*{suffix}.json")))
        if args.quick or not p.endswith("-quick.json")
    ]
    results = [r for r in results if "seeds" in r]  # side runs (compile.json) have sections of their own
    lines = [
        "# Benchmarks",
        "",
        "Written by `python benchmarks/report.py` from `benchmarks/results/*.json` (made by "
        "`python benchmarks/run.py`). Baseline and ICPC are trained in the same run, on the same machine, "
        "with the same model, initial weights, data, epochs, batch size and optimiser; ratios are medians "
        "over seeds. FLOPs are estimates from token counts (`icpc_hf.encoder_flops`).",
        "",
        "These runs stop after a fixed, short number of epochs with hand-picked level weights: the under-trained "
        "regime, where fewer tokens mean less signal per step. Whether ICPC reaches the same accuracy sooner "
        "when every arm trains to convergence, with the defaults and against the peers, is measured by "
        "`benchmarks/convergence.py`: see [convergence.md](convergence.md).",
        "",
        *HOW_TO_RUN,
    ]
    if results:
        machine = results[0]["machine"]
        lines += [
            f"Machine: {machine['cores']} CPU cores ({machine['cpu']}), {machine['memory_gb']} GB, no GPU; "
            f"torch {machine['torch']} ({machine.get('torch_threads', '?')} threads), transformers "
            f"{machine['transformers']}, Python {machine['python']}.",
            "",
        ]
    for result in results:
        lines += modality_section(result, plots)
    calibrations = {r["modality"]: r["calibration"] for r in results if (r.get("calibration") or {}).get("test")}
    if calibrations:
        loss = next(iter(calibrations.values()))["max_accuracy_loss"]
        lines += [
            "## Calibrated cascades",
            "",
            f"Thresholds chosen on the validation split of each task (seed 0's ICPC model) for the cheapest "
            f"cascade within {loss:.1%} of full-size validation accuracy (`icpc_hf.training.calibrate`), then measured "
            "on the test set against full-size inference of the same model, same batch size, median of 3 "
            "timings taken alternately.",
            "",
            "| modality | levels | thresholds | test accuracy full | test accuracy cascade | speedup | "
            "est. FLOPs vs full |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, c in calibrations.items():
            t = c["test"]
            lines.append(
                f"| {name} | {[round(x, 3) for x in c['levels']]} | {c['thresholds']} | "
                f"{t['full_accuracy']:.4f} | {t['cascade_accuracy']:.4f} | {t['speedup']:.2f} | "
                f"{t['flops_ratio']:.2f} |"
            )
        lines.append("")
        lines += [f"![frontier {name}](images/frontier-{name}.png)" for name in calibrations] + [""]
    compile_path = os.path.join(args.results, "compile.json")
    if os.path.exists(compile_path):
        data = json.load(open(compile_path))
        lines += [
            "## torch.compile with variable levels",
            "",
            f"{data['steps']} training steps, batch {data['batch_size']}, median of {data['repeats']} runs "
            "(`python benchmarks/compile_levels.py`).",
            "",
            "| mode | total s | steady step s | graphs compiled |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['mode']} | {r['total_seconds']:.1f} | {r['steady_step_seconds']:.4f} | {r['graphs']} |"
            for r in data["rows"]
        ]
        lines.append("")
    lines += NOTES
    with open(args.output, "w") as handle:
        handle.write("\n".join(lines))
    print(f"wrote {args.output}")
    if results and not args.quick:
        update_results_index(results, calibrations)


def headline(results: list[dict], calibrations: dict[str, dict]) -> str:
    rows = [
        "| modality | test accuracy, baseline → ICPC at full size (mean over seeds) | training speedup | "
        "ICPC served by its calibrated cascade (seed 0): accuracy, speedup vs full size | cascade speedup at "
        "threshold 0.9 | best TTA accuracy (mode, budget, cost) |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        seeds = result["seeds"]
        tta = [t for t in seeds[0].get("tta", []) if "accuracy" in t]
        best = max(tta, key=lambda t: (t["accuracy"], -t["cost"])) if tta else None
        calibrated = (calibrations.get(result["modality"]) or {}).get("test")
        rows.append(
            f"| {result['modality']} | {statistics.mean(r['baseline_accuracy'] for r in seeds):.4f} → "
            f"{statistics.mean(r['icpc_accuracy'] for r in seeds):.4f} | {median(seeds, 'train_speedup'):.2f}x | "
            + (f"{calibrated['cascade_accuracy']:.4f}, {calibrated['speedup']:.2f}x | " if calibrated else "| ")
            + f"{median(seeds, 'cascade_speedup'):.2f}x | "
            + (
                f"{best['accuracy']:.4f} ({best['mode']}, {best['budget']}x, cost {best['cost']:.2f}) |"
                if best
                else "|"
            )
        )
    return "\n".join(rows)


def update_results_index(results: list[dict], calibrations: dict[str, dict]) -> None:
    """Replace the figures between the headline markers of the results index (docs/results/README.md)."""
    if splice(RESULTS_INDEX, "headline", headline(results, calibrations)):
        print(f"updated the headline figures in {RESULTS_INDEX}")


if __name__ == "__main__":
    main()
