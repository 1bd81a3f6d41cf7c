"""Time to accuracy: every arm trained until the baseline has stopped improving, evaluated after every epoch.

    python benchmarks/convergence.py                         # every task, every arm, 3 seeds, then the report
    python benchmarks/convergence.py --tasks image --seeds 1
    python benchmarks/convergence.py --quick                 # seconds: keeps the harness working (CI)

The question a user asks of a training method: do I reach the same accuracy sooner, in training and in serving?
For each task the same model (same initial weights), data, batch size, optimiser and epochs are trained by every
arm: the plain Trainer (baseline), ICPC variants, and the peers (one fixed small level: "just downscale";
progressive resizing; PatchDropout at ICPC's token budget). After every epoch the clock stops and the model is
evaluated at each level on a validation half and a test half of the held-out set. An arm's *served* accuracy at
that epoch is its test accuracy at the level that is best on validation (the baseline serves at full size).

Time-to-accuracy speedup of an arm = the training seconds the baseline needs to reach its best test accuracy,
divided by the seconds the arm needs to reach that accuracy as served. Every (task, arm, seed) is written to its
own file as soon as it finishes (benchmarks/results/convergence/TASK/ARM-sSEED.json) and skipped on a rerun. An ICPC
arm's shipped model also leaves each level's pass over validation and test beside it (ARM-sSEED.passes.json), from
which benchmarks/cascade_rules.py replays calibration rules offline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from typing import Any

import torch
from harness import (
    RESULTS,
    Arm,
    Task,
    accuracy_at,
    data_fingerprint,
    labels_of,
    served,
    train_arm,
)  # also puts examples/ on the path

# isort: split
from _shared import AccuracyOverTime
from tasks import TIME_TO_ACCURACY, load

from icpc_hf import ICPCConfig, icpc_settings, is_patched, patch_model, registration_for
from icpc_hf.training.budget import level_costs as training_level_costs
from icpc_hf.training.calibrate import Calibration, LevelPasses, run_level_passes

CONVERGENCE_RESULTS = os.path.join(RESULTS, "convergence")


def picks(name: str, pattern: str) -> bool:
    """Whether `--arms PATTERN` selects the arm `name`: a name prefix, or the exact name when it ends in `$`."""
    return name == pattern[:-1] if pattern.endswith("$") else name.startswith(pattern)


def level_costs(model, levels: list[float]) -> dict[str, float]:
    """Estimated cost of one pass at each level, as a fraction of a full-size pass (from the token counts)."""
    settings = dataclasses.replace(icpc_settings(model), levels=list(levels))
    try:
        costs = training_level_costs(registration_for(settings.model_type).modality, settings)
    except ValueError:  # text: a level's cost depends on the texts; the cascade measures it
        return {}
    return {f"{lv:g}": cost for lv, cost in zip(levels, costs)}


def serving(model, task: Task) -> dict[str, Any]:
    """The trained model as shipped, the cascade ICPCCallback calibrated on the validation half at the end of
    training (full size alone for a plain model), measured on test against its own full-size inference."""
    settings = icpc_settings(model)
    shipped = {"levels": list(settings.cascade_levels), "thresholds": settings.thresholds}
    if shipped["levels"] == [1.0]:  # the same path as full size: nothing to time
        full_accuracy = accuracy_at(model, task, [1.0])[0]
        return {**shipped, "full_accuracy": full_accuracy, "cascade_accuracy": full_accuracy, "speedup": 1.0}
    timing = served(model, task)
    return {
        **shipped,
        "full_accuracy": timing["full_accuracy"],
        "cascade_accuracy": timing["cascade_accuracy"],
        "cascade_flops_ratio": timing["flops_ratio"],
        "full_seconds": timing["full_seconds"],
        "cascade_seconds": timing["cascade_seconds"],
        "speedup": timing["speedup"],
    }


def passes_record(passes: LevelPasses) -> dict[str, Any]:
    """Per-level probabilities and costs, rounded, as JSON: enough to replay any cascade rule offline."""
    return {
        "levels": passes.levels,
        "labels": passes.labels.tolist(),
        "probabilities": [[[round(p, 4) for p in row] for row in probs.tolist()] for probs in passes.probabilities],
        "costs": [[round(c, 5) for c in cost.tolist()] for cost in passes.costs],
    }


def level_passes(model, task: Task, calibration: Calibration | None, reserve: bool = False) -> dict[str, Any] | None:
    """The passes the shipped cascade was calibrated from (validation) and the same passes on test, so that other
    calibration rules can be replayed offline on the same trained model (benchmarks/cascade_rules.py). `reserve`:
    also the passes over `task.reserve`, and each level's FLOPs-estimated costs on validation and reserve."""
    if calibration is None or calibration.passes is None:
        return None

    def passes_over(features: list, cost: str) -> LevelPasses:
        return run_level_passes(model, features, task.processor, labels_of(features), calibration.levels, cost=cost)

    record = {
        "validation": passes_record(calibration.passes),
        "test": passes_record(passes_over(task.test, calibration.cost_unit)),
    }
    if reserve and task.reserve:
        record["reserve"] = passes_record(passes_over(task.reserve, calibration.cost_unit))
        for split, features in (("validation", task.validation), ("reserve", task.reserve)):
            flops = passes_over(features, "flops").costs
            record[f"{split}_flops_costs"] = [[round(c, 5) for c in cost.tolist()] for cost in flops]
    return record


def run_arm(task: Task, name: str, arm: Arm, seed: int, work: str, reserve_passes: bool = False) -> dict[str, Any]:
    """Train one arm with the clock stopped for an evaluation after every `task.eval_every` epochs; the result file's
    record (`reserve_passes`: `level_passes`)."""
    levels = arm.eval_levels or task.levels
    evaluation = AccuracyOverTime(
        task.validation, task.test, task.processor, levels, task.batch_size, every=task.eval_every
    )
    run = train_arm(
        task, arm, seed, os.path.join(work, name, str(seed)), callbacks=[evaluation], eval_dataset=task.validation
    )
    model = run["model"]
    if not is_patched(model):
        patch_model(model, ICPCConfig(levels=levels))
    shipped_levels = None
    if run["compensation"] is not None:  # each level as served after compensation (the curve has them before)
        held = {"validation": dataclasses.replace(task, test=task.validation), "test": task}
        shipped_levels = {
            split: {f"{lv:g}": accuracy_at(model, split_task, [lv])[0] for lv in levels}
            for split, split_task in held.items()
        }
    return {
        "task": task.name,
        "arm": name,
        "seed": seed,
        "icpc": arm.icpc,
        "note": arm.note,
        "settings": icpc_settings(model).to_dict() if arm.icpc is not None else None,
        "epochs": task.epochs,
        "train_size": len(task.train),
        "validation_size": len(task.validation),
        "test_size": len(task.test),
        "data_sha256": data_fingerprint(task),
        "train_seconds": evaluation.curve[-1]["train_seconds"],
        "token_ratio": arm.token_ratio or run["token_ratio"],
        "flops_saved": run["flops_saved"],
        "trainer_eval_seconds": run["trainer_eval_seconds"],
        **({"epoch_floors": run["epoch_floors"]} if run["epoch_floors"] else {}),
        "level_costs": level_costs(model, levels),
        "curve": evaluation.curve,
        "serving": serving(model, task),
        "compensation": dataclasses.asdict(run["compensation"]) if run["compensation"] is not None else None,
        "compensated_level_accuracy": shipped_levels,
        "ship_check": dataclasses.asdict(run["ship_check"]) if run["ship_check"] is not None else None,
        "passes": level_passes(model, task, run["calibration"], reserve_passes),
    }


def result_path(output: str, task: str, arm: str, seed: int) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in arm).strip("-")
    return os.path.join(output, task, f"{slug}-s{seed}.json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["image", "audio", "video"])
    parser.add_argument(
        "--arms", nargs="+", default=None, help="arms to run, by name prefix, or exact name ending in $ (default: all)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--output", default=CONVERGENCE_RESULTS)
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument(
        "--reserve-passes",
        action="store_true",
        help="also keep each ICPC model's level passes over the task's reserve texts (the calibration-size round)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for task_name in args.tasks:
        task = load(TIME_TO_ACCURACY, task_name, args.quick)
        seeds = 1 if args.quick else args.seeds
        work = os.path.join(tempfile.gettempdir(), "icpc-convergence", task_name)
        for seed in range(seeds):
            for name, arm in task.arms.items():
                if args.arms and not any(picks(name, pattern) for pattern in args.arms):
                    continue
                path = result_path(args.output, task_name, name, seed)
                if os.path.exists(path):
                    continue
                result = run_arm(task, name, arm, seed, work, args.reserve_passes)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                passes = result.pop("passes")
                if passes is not None:  # beside the result, compact: thousands of numbers
                    with open(path.replace(".json", ".passes.json"), "w") as handle:
                        json.dump(passes, handle)
                with open(path + ".tmp", "w") as handle:
                    json.dump(result, handle, indent=1)
                os.replace(path + ".tmp", path)
                best = max(p["served_accuracy"] for p in result["curve"])
                print(
                    f"{task_name} {name} seed {seed}: {result['train_seconds']:.0f} s, best served {best:.4f}, "
                    f"final {result['curve'][-1]['served_accuracy']:.4f} at {result['curve'][-1]['served_level']}",
                    flush=True,
                )
    if not args.no_report:
        import convergence_report

        convergence_report.main(["--results", args.output] + (["--quick"] if args.quick else []))


if __name__ == "__main__":
    main()
