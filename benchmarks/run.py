"""ICPC against a plain Trainer, side by side in one run: training speed, accuracy, cascade, cost, ablations.

    python benchmarks/run.py                      # every modality, 3 seeds, ablations, then the report
    python benchmarks/run.py --modalities image --seeds 3
    python benchmarks/run.py --quick              # tiny data, seconds: keeps the harness working (CI)
    python benchmarks/report.py                   # docs/results/benchmarks.md and its plots again from the results

For each modality and seed the same model (same initial weights), data, epochs, batch size and optimiser are
trained twice: baseline = plain `Trainer` on full inputs with the usual collator; ICPC = patched model,
`ICPCDataCollator`, `ICPCCallback`. Both are evaluated at full size on the same test set, and the ICPC model's
cascade against its full-size inference at the same batch size (median of 3 timings). On seed 0 the ICPC model's
cascade thresholds are then calibrated on the validation split, and the ablations train the other variants.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from typing import Any

import psutil
import torch
from harness import RESULT_DOCS, RESULTS, Arm, Task, accuracy_at, labels_of, modality_of, served, train_arm
from tasks import SIDE_BY_SIDE, load

from icpc_hf import ICPCConfig, icpc_settings, patch_model, registration_for


def evaluate_pair(task: Task, baseline: dict, icpc_run: dict) -> dict[str, Any]:
    base_model, model = baseline["model"], icpc_run["model"]
    patch_model(base_model, ICPCConfig())  # full-size evaluation through the same code; bit-identical
    base_acc, _ = accuracy_at(base_model, task, [1.0])
    serving = served(model, task)
    cascade = serving["result"]
    settings = icpc_settings(model)
    modality = registration_for(model.config).modality
    per_level = {f"{lv:g}": accuracy_at(model, task, [lv])[0] for lv in settings.levels}
    base_epoch = statistics.median(baseline["epoch_seconds"])
    icpc_epoch = statistics.median(icpc_run["epoch_seconds"][: max(1, task.epochs - settings.uncompressed_last_epochs)])
    flop_reduction = 1.0 / max(1e-9, 1.0 - icpc_run["flops_saved"])
    return {
        "baseline_accuracy": base_acc,
        "icpc_accuracy": serving["full_accuracy"],
        "baseline_epoch_seconds": base_epoch,
        "icpc_epoch_seconds": icpc_epoch,
        "baseline_train_seconds": baseline["seconds"],
        "icpc_train_seconds": icpc_run["seconds"],
        "train_speedup": baseline["seconds"] / icpc_run["seconds"],
        "compressed_epoch_speedup": base_epoch / icpc_epoch,
        "train_token_ratio": icpc_run["token_ratio"],
        "train_flop_reduction": flop_reduction,
        "train_efficiency": (baseline["seconds"] / icpc_run["seconds"]) / flop_reduction,
        "collator_share_baseline": baseline["collator_share"],
        "collator_share_icpc": icpc_run["collator_share"],
        "peak_memory_mb_baseline": baseline["peak_memory_mb"],
        "peak_memory_mb_icpc": icpc_run["peak_memory_mb"],
        "step_ms_baseline": baseline["step_ms"],
        "step_ms_icpc": icpc_run["step_ms"],
        "steps_baseline": baseline["steps"],
        "steps_icpc": icpc_run["steps"],
        "forward_backward_speedup": baseline["step_ms"]["forward_backward"] / icpc_run["step_ms"]["forward_backward"],
        "full_inference_seconds": serving["full_seconds"],
        "cascade_seconds": serving["cascade_seconds"],
        "cascade_accuracy": serving["cascade_accuracy"],
        "cascade_speedup": serving["speedup"],
        "cascade_flops_ratio": serving["flops_ratio"],
        "cascade_efficiency": serving["speedup"] * serving["flops_ratio"],
        "cascade_levels": cascade.levels,
        "cascade_mean_tokens": cascade.summary()["mean_tokens_spent"],
        "full_tokens": float(
            modality.full_tokens(modality.collate(task.processor, task.test[:1], 1.0, settings), settings)[0]
        ),
        "icpc_accuracy_per_level": per_level,
        "tta": test_time_augmentation(model, task),
    }


def test_time_augmentation(model, task: Task) -> list[dict[str, Any]]:
    """Accuracy and estimated cost (fraction of one full-size pass) of TTA at three budgets, alone and with the
    cascade's early exit, on the same trained model."""
    rows = []
    for budget in (1.0, 1.5, 2.0):
        for mode, thresholds in (("tta", 1.0), ("cascade+tta", None)):
            try:
                acc, result = accuracy_at(
                    model, task, icpc_settings(model).levels, thresholds=thresholds, combine="mean", budget=budget
                )
            except ValueError as error:  # a budget below the cheapest level
                rows.append({"mode": mode, "budget": budget, "error": str(error)})
                continue
            rows.append(
                {
                    "mode": mode,
                    "budget": budget,
                    "accuracy": acc,
                    "cost": result.summary()["flops_ratio"],
                    "levels_used": result.summary()["mean_levels_used"],
                }
            )
    return rows


def ablation_arms(task: Task, main_run: dict) -> dict[str, Arm]:
    """What each part of ICPC adds: position strategy (grids) or original positions (text), the level schedule
    (one fixed low level; on grids also the last epoch at full size and uniform draws), and the peers run through
    the same embeddings. An arm without `eval_levels` is evaluated at the main run's levels and full size."""
    from peers import add_patch_dropout, reindex_positions

    model = main_run["model"]
    settings = icpc_settings(model)
    arms: dict[str, Arm] = {}
    if modality_of(model) == "text":
        arms["re-indexed positions (0..n-1 after pruning)"] = Arm(task.icpc, prepare=reindex_positions)
        arms["baseline without group_by_length (plain random batches)"] = Arm(None, args={}, eval_levels=[1.0])
    else:
        for strategy in ("crop", "stride", "interpolate"):
            icpc = {**task.icpc, "position_strategy": strategy}
            if icpc.get("trim_padding") and strategy != "crop":
                icpc["trim_padding"] = False  # trimming is defined for crop positions only
            arms[strategy] = Arm(icpc)
        # The schedule's trade between speed and full-size accuracy (grids only: it reads the same on text, and
        # text's ablations already take the longest).
        if not task.icpc.get("uncompressed_last_epochs"):
            arms["last epoch uncompressed"] = Arm({**task.icpc, "uncompressed_last_epochs": 1})
        if task.icpc.get("level_weights"):
            arms["levels drawn uniformly"] = Arm({**task.icpc, "level_weights": None})
    smallest = min(settings.levels)
    arms[f"one fixed level {smallest:.3g}"] = Arm(
        {**task.icpc, "levels": [smallest, 1.0], "level_weights": [1.0, 0.0], "uncompressed_last_epochs": 0}
    )
    if modality_of(model) == "image":
        keep = main_run["token_ratio"]
        arms[f"PatchDropout (keeps {keep:.2f} of the patches)"] = Arm(
            None, prepare=lambda fresh: add_patch_dropout(fresh, keep, 0), token_ratio=keep
        )
    return arms


def ablations(task: Task, main_run: dict, output_dir: str) -> dict[str, Any]:
    """Seed 0: every arm trained and evaluated at each level; an arm equal to the main ICPC settings reuses the main
    run instead of training again."""
    settings = icpc_settings(main_run["model"])
    all_levels = sorted(set(settings.levels) | {1.0})
    rows = {}
    for index, (name, arm) in enumerate(ablation_arms(task, main_run).items()):
        reused = arm.icpc is not None and arm.prepare is None and ICPCConfig(**arm.icpc) == ICPCConfig(**task.icpc)
        run = main_run if reused else train_arm(task, arm, 0, os.path.join(output_dir, f"ablation-{index}"))
        model = run["model"]
        if arm.icpc is None:  # evaluated through the same code at full size and below (bit-identical at 1.0)
            patch_model(
                model,
                ICPCConfig(
                    **{
                        k: v
                        for k, v in settings.to_dict().items()
                        if k not in ("model_type", "geometry", "uncompressed_last_epochs", "level_weights")
                    }
                ),
            )
        rows[name] = {
            "train_seconds": run["seconds"],
            "token_ratio": arm.token_ratio or run["token_ratio"],
            "main_run": reused,
            "accuracy_per_level": {
                f"{lv:g}": accuracy_at(model, task, [lv])[0] for lv in (arm.eval_levels or all_levels)
            },
        }
        print(f"  ablation {name}: {rows[name]}", flush=True)
    return rows


def calibrate(task: Task, model, plots: str, max_accuracy_loss: float = 0.005) -> dict[str, Any] | None:
    """Thresholds chosen on the validation split (`icpc_hf.training.calibrate`), the cascade then measured on test."""
    from icpc_hf.training.calibrate import calibrate_thresholds

    if task.validation is None:
        return None
    calibration = calibrate_thresholds(
        model,
        task.validation,
        task.processor,
        labels_of(task.validation).tolist(),
        max_accuracy_loss=max_accuracy_loss,
        batch_size=task.batch_size,
    )
    os.makedirs(plots, exist_ok=True)
    calibration.plot(os.path.join(plots, f"frontier-{task.name}.png"))
    result = {
        "max_accuracy_loss": max_accuracy_loss,
        "levels": calibration.levels,
        "frontier": [vars(p) for p in calibration.frontier()],
        "thresholds": None,
    }
    if calibration.chosen is None:
        return result
    calibration.apply(model)
    serving = served(model, task)
    result.update(
        levels=calibration.chosen.levels,
        thresholds=calibration.chosen.thresholds,
        validation={
            "full_accuracy": calibration.full_accuracy,
            "cascade_accuracy": calibration.chosen.accuracy,
            "cost": calibration.chosen.cost,
        },
        test={
            "full_accuracy": serving["full_accuracy"],
            "cascade_accuracy": serving["cascade_accuracy"],
            "full_seconds": serving["full_seconds"],
            "cascade_seconds": serving["cascade_seconds"],
            "speedup": serving["speedup"],
            "flops_ratio": serving["flops_ratio"],
            "answered": serving["answered"],
        },
    )
    return result


def machine(threads: int) -> dict[str, Any]:
    """The machine line of the report."""
    import transformers

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": threads,
        "transformers": transformers.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modalities", nargs="+", default=["image", "text", "audio", "video"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="skip writing docs/results/benchmarks.md and the results index "
        "headline (with --quick the report goes to OUTPUT/benchmarks.md)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="torch threads (default: every core; use 1 per process when sharing the machine)",
    )
    parser.add_argument("--output", default=RESULTS)
    parser.add_argument(
        "--plots",
        help="where the calibration frontier plots go (default: docs/results/images, or OUTPUT/images with --quick)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.output, exist_ok=True)
    baseline_arm = Arm(None)
    for name in args.modalities:
        task = load(SIDE_BY_SIDE, name, args.quick)
        seeds = 1 if args.quick else args.seeds
        results = {
            "modality": name,
            "quick": args.quick,
            "machine": machine(args.threads),
            "epochs": task.epochs,
            "batch_size": task.batch_size,
            "train_size": len(task.train),
            "test_size": len(task.test),
            "icpc": task.icpc,
            "seeds": [],
            "baseline_args": task.baseline_args,
        }
        started = time.perf_counter()
        work = os.path.join(tempfile.gettempdir(), "icpc-bench", name)
        for seed in range(seeds):
            baseline = train_arm(task, baseline_arm, seed, os.path.join(work, str(seed), "baseline"))
            icpc_run = train_arm(task, Arm(task.icpc), seed, os.path.join(work, str(seed), "icpc"))
            row = {"seed": seed, **evaluate_pair(task, baseline, icpc_run)}
            results["seeds"].append(row)
            print(
                f"{name} seed {seed}: " + json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}),
                flush=True,
            )
            if seed == 0:
                main_run = icpc_run
        if not args.no_ablations:
            results["ablations"] = ablations(task, main_run, os.path.join(work, "ablations"))
        suffix = "-quick" if args.quick else ""
        plots = args.plots or os.path.join(args.output if args.quick else RESULT_DOCS, "images")
        results["calibration"] = calibrate(task, main_run["model"], plots)
        results["wall_seconds"] = time.perf_counter() - started
        with open(os.path.join(args.output, f"{name}{suffix}.json"), "w") as handle:
            json.dump(results, handle, indent=2)
    if not args.no_report:
        import report

        report.main(
            ["--results", args.output]
            + (["--quick", "--output", os.path.join(args.output, "benchmarks.md")] if args.quick else [])
        )


if __name__ == "__main__":
    main()
