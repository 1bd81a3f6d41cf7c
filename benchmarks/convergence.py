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
own file as soon as it finishes (benchmarks/results/convergence/TASK/ARM-sSEED.json) and skipped on a rerun.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from run import Task, timed_pair, train_once  # noqa: E402  (also puts examples/ on the path)
from _shared import AccuracyOverTime  # noqa: E402

from icpc_hf import ICPCConfig, patch_model, run_cascade  # noqa: E402
from icpc_hf.patching import icpc_settings, is_patched  # noqa: E402
from icpc_hf.registry import family_for  # noqa: E402

RESULTS = os.path.join(HERE, "results", "convergence")


@dataclass
class Arm:
    """One way of training the task's model: ICPC settings (None: a plain Trainer), an optional hook on the fresh
    model (a peer), and the levels it is evaluated at (None: every level of the task)."""

    icpc: dict | None
    prepare: Callable | None = None
    eval_levels: list[float] | None = None
    note: str = ""
    token_ratio: float | None = None
    """Share of the tokens a peer keeps in training (ICPC arms measure theirs)."""


@dataclass
class ConvergenceTask:
    task: Task
    validation: list
    """Features evaluated after every epoch to choose the serving level (and calibrate the final cascade)."""
    test: list
    """Features the accuracies are reported on."""
    levels: list[float]
    """Levels every compressed arm is evaluated at (full size last)."""
    arms: dict[str, Arm] = field(default_factory=dict)
    eval_every: int = 1
    """Evaluate after every this many epochs (and after the last)."""


def level_costs(model, levels: list[float]) -> dict[str, float]:
    """Estimated cost of one pass at each level, as a fraction of a full-size pass (from the token counts)."""
    settings = dataclasses.replace(icpc_settings(model), levels=list(levels))
    try:
        costs = family_for(settings.model_type).modality.level_costs(settings)
    except ValueError:  # text: a level's cost depends on the texts; the cascade measures it
        return {}
    return {f"{lv:g}": cost for lv, cost in zip(levels, costs)}


def serving(model, spec: ConvergenceTask) -> dict[str, Any]:
    """The trained model as shipped, the cascade ICPCCallback calibrated on the validation half at the end of
    training (full size alone for a plain model), measured on test against its own full-size inference (seconds
    timed alternately, median of 3)."""
    task, test = spec.task, spec.test
    labels = torch.tensor([f["label"] for f in test])
    settings = icpc_settings(model)

    def full():
        return run_cascade(model, test, task.processor, levels=[1.0], batch_size=task.batch_size)

    def cascade():
        return run_cascade(model, test, task.processor, batch_size=task.batch_size)

    full_accuracy = float((full().predictions == labels).float().mean())
    shipped = {"levels": list(settings.cascade_levels), "thresholds": settings.thresholds, "full_accuracy": full_accuracy}
    if shipped["levels"] == [1.0]:  # the same path as full size: nothing to time
        return {**shipped, "cascade_accuracy": full_accuracy, "speedup": 1.0}
    full_seconds, cascade_seconds = timed_pair(full, cascade)
    result = cascade()
    return {**shipped, "cascade_accuracy": float((result.predictions == labels).float().mean()),
            "cascade_flops_ratio": result.summary()["flops_ratio"],
            "full_seconds": full_seconds, "cascade_seconds": cascade_seconds,
            "speedup": full_seconds / cascade_seconds}


def run_arm(spec: ConvergenceTask, name: str, arm: Arm, seed: int, work: str) -> dict[str, Any]:
    task = spec.task
    levels = arm.eval_levels or spec.levels
    evaluation = AccuracyOverTime(spec.validation, spec.test, task.processor, levels, task.batch_size,
                                  every=spec.eval_every)
    run = train_once(task, seed, arm.icpc, os.path.join(work, name, str(seed)), prepare=arm.prepare,
                     callbacks=[evaluation], eval_dataset=spec.validation)
    model = run["model"]
    if not is_patched(model):
        patch_model(model, ICPCConfig(levels=levels))
    costs = level_costs(model, levels)
    return {"task": task.name, "arm": name, "seed": seed, "icpc": arm.icpc, "note": arm.note,
            "settings": icpc_settings(model).to_dict() if arm.icpc is not None else None,
            "epochs": task.epochs, "train_size": len(task.train), "validation_size": len(spec.validation),
            "test_size": len(spec.test),
            "train_seconds": evaluation.curve[-1]["train_seconds"],
            "token_ratio": arm.token_ratio or run["token_ratio"], "flops_saved": run["flops_saved"], "level_costs": costs,
            "curve": evaluation.curve, "serving": serving(model, spec)}


def result_path(output: str, task: str, arm: str, seed: int) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in arm).strip("-")
    return os.path.join(output, task, f"{slug}-s{seed}.json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["image", "audio", "video"])
    parser.add_argument("--arms", nargs="+", default=None, help="arms to run, by name or name prefix (default: all)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--output", default=RESULTS)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import convergence_tasks

    for task_name in args.tasks:
        spec = getattr(convergence_tasks, f"{task_name}_task")(args.quick)
        seeds = 1 if args.quick else args.seeds
        work = os.path.join(tempfile.gettempdir(), "icpc-convergence", task_name)
        for seed in range(seeds):
            for name, arm in spec.arms.items():
                if args.arms and not any(name.startswith(prefix) for prefix in args.arms):
                    continue
                path = result_path(args.output, task_name, name, seed)
                if os.path.exists(path):
                    continue
                result = run_arm(spec, name, arm, seed, work)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path + ".tmp", "w") as handle:
                    json.dump(result, handle, indent=1)
                os.replace(path + ".tmp", path)
                best = max(p["served_accuracy"] for p in result["curve"])
                print(f"{task_name} {name} seed {seed}: {result['train_seconds']:.0f} s, best served {best:.4f}, "
                      f"final {result['curve'][-1]['served_accuracy']:.4f} at {result['curve'][-1]['served_level']}",
                      flush=True)
    if not args.no_report:
        import convergence_report

        convergence_report.main(["--results", args.output] + (["--quick"] if args.quick else []))


if __name__ == "__main__":
    main()
