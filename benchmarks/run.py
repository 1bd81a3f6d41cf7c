"""ICPC against a plain Trainer, side by side in one run: training speed, accuracy, cascade, cost, ablations.

    python benchmarks/run.py                      # every modality, 3 seeds; results in benchmarks/results/
    python benchmarks/run.py --modalities image --seeds 3
    python benchmarks/run.py --quick              # tiny data, seconds: keeps the harness working (CI)
    python benchmarks/report.py                   # docs/benchmarks.md and its plots from the results

For each modality and seed the same model (same initial weights), data, epochs, batch size and optimiser are
trained twice: baseline = plain `Trainer` on full inputs with the usual collator; ICPC = patched model,
`ICPCDataCollator`, `ICPCCallback`. Both are evaluated at full size on the same test set, and the ICPC model's
cascade against its full-size inference at the same batch size (median of 3 timings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model, run_cascade  # noqa: E402
from icpc_hf.patching import icpc_settings  # noqa: E402
from icpc_hf.registry import REGISTRY  # noqa: E402


@dataclass
class Task:
    """One modality's benchmark: data, a model factory and the training settings both runs share."""

    name: str
    train: list
    test: list
    new_model: Callable[[int], Any]
    processor: Any
    baseline_collator: Callable
    epochs: int
    batch_size: int
    learning_rate: float
    icpc: dict = field(default_factory=dict)
    extra_args: dict = field(default_factory=dict)
    validation: list | None = None
    """Held-out samples for choosing cascade thresholds (benchmarks/calibration.py); None: test voices only."""


class EpochTimer(TrainerCallback):
    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epoch_seconds.append(time.perf_counter() - self._start)


class TimedCollator:
    """Wraps a collate function and adds up the seconds spent in it."""

    def __init__(self, collate: Callable) -> None:
        self.collate = collate
        self.seconds = 0.0

    def __call__(self, features, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.collate(features, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


class TimedICPCCollator(ICPCDataCollator):
    """ICPCDataCollator that adds up its own seconds (it must stay an ICPCDataCollator for the callback)."""

    seconds = 0.0

    def __call__(self, features, level=None):
        start = time.perf_counter()
        try:
            return super().__call__(features, level)
        finally:
            self.seconds += time.perf_counter() - start


class PeakMemory:
    """Peak resident memory above the level at start, sampled every 20 ms."""

    def __enter__(self):
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.megabytes = (self.peak - self.start) / 2**20


def training_args(task: Task, output_dir: str, seed: int) -> TrainingArguments:
    values = dict(
        output_dir=output_dir, num_train_epochs=task.epochs, per_device_train_batch_size=task.batch_size,
        per_device_eval_batch_size=task.batch_size, learning_rate=task.learning_rate, weight_decay=0.05,
        warmup_steps=20, lr_scheduler_type="cosine", save_strategy="no", report_to=[], use_cpu=True, seed=seed,
        dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True, logging_steps=10_000,
    )
    values.update(task.extra_args)
    return TrainingArguments(**values)


def train_once(task: Task, seed: int, icpc: dict | None, output_dir: str, prepare: Callable | None = None) -> dict:
    """Train one model; icpc=None is the plain baseline (`prepare` may add a peer method to it)."""
    set_seed(seed)
    model = task.new_model(seed)
    if prepare is not None:
        model = prepare(model)
    callbacks: list = [EpochTimer()]
    if icpc is None:
        collator = TimedCollator(task.baseline_collator)
    else:
        settings = ICPCConfig(seed=seed, **icpc)
        model = patch_model(model, settings)
        collator = TimedICPCCollator(task.processor, settings)
        callbacks.append(ICPCCallback())
    trainer = Trainer(model=model, args=training_args(task, output_dir, seed), train_dataset=task.train,
                      data_collator=collator, callbacks=callbacks)
    with PeakMemory() as memory:
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    totals = callbacks[1].train_totals if icpc is not None else None
    return {"model": model, "seconds": seconds, "epoch_seconds": callbacks[0].epoch_seconds,
            "collator_share": collator.seconds / seconds, "peak_memory_mb": memory.megabytes,
            "token_ratio": totals["tokens"] / totals["full_tokens"] if totals else 1.0,
            "flops_saved": 1.0 - totals["flops"] / totals["full_flops"] if totals else 0.0}


def accuracy_at(model, task: Task, levels, labels, **kwargs) -> tuple[float, Any]:
    result = run_cascade(model, task.test, task.processor, levels=levels, batch_size=task.batch_size, **kwargs)
    return float((result.predictions == labels).float().mean()), result


def timed_median(fn: Callable, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def evaluate_pair(task: Task, baseline: dict, icpc_run: dict) -> dict[str, Any]:
    labels = torch.tensor([f["label"] for f in task.test])
    base_model, model = baseline["model"], icpc_run["model"]
    patch_model(base_model, ICPCConfig())  # full-size evaluation through the same code; bit-identical
    base_acc, _ = accuracy_at(base_model, task, [1.0], labels)
    icpc_acc, _ = accuracy_at(model, task, [1.0], labels)
    cascade_acc, cascade = accuracy_at(model, task, None, labels)
    full_seconds = timed_median(lambda: accuracy_at(model, task, [1.0], labels))
    cascade_seconds = timed_median(lambda: accuracy_at(model, task, None, labels))
    settings = icpc_settings(model)
    modality = REGISTRY[settings.model_type].modality
    per_level = {f"{lv:g}": accuracy_at(model, task, [lv], labels)[0] for lv in settings.levels}
    base_epoch = statistics.median(baseline["epoch_seconds"])
    icpc_epoch = statistics.median(icpc_run["epoch_seconds"][: max(1, task.epochs - settings.uncompressed_last_epochs)])
    flop_reduction = 1.0 / max(1e-9, 1.0 - icpc_run["flops_saved"])
    return {
        "baseline_accuracy": base_acc, "icpc_accuracy": icpc_acc,
        "baseline_epoch_seconds": base_epoch, "icpc_epoch_seconds": icpc_epoch,
        "baseline_train_seconds": baseline["seconds"], "icpc_train_seconds": icpc_run["seconds"],
        "train_speedup": baseline["seconds"] / icpc_run["seconds"],
        "compressed_epoch_speedup": base_epoch / icpc_epoch,
        "train_token_ratio": icpc_run["token_ratio"], "train_flop_reduction": flop_reduction,
        "train_efficiency": (baseline["seconds"] / icpc_run["seconds"]) / flop_reduction,
        "collator_share_baseline": baseline["collator_share"], "collator_share_icpc": icpc_run["collator_share"],
        "peak_memory_mb_baseline": baseline["peak_memory_mb"], "peak_memory_mb_icpc": icpc_run["peak_memory_mb"],
        "full_inference_seconds": full_seconds, "cascade_seconds": cascade_seconds,
        "cascade_accuracy": cascade_acc, "cascade_speedup": full_seconds / cascade_seconds,
        "cascade_flops_ratio": cascade.summary()["flops_ratio"],
        "cascade_efficiency": (full_seconds / cascade_seconds) * cascade.summary()["flops_ratio"],
        "cascade_levels": cascade.levels, "cascade_mean_tokens": cascade.summary()["mean_tokens_spent"],
        "full_tokens": float(modality.full_tokens(modality.collate(task.processor, task.test[:1], 1.0, settings),
                                                  settings)[0]),
        "icpc_accuracy_per_level": per_level,
        "tta": test_time_augmentation(model, task, labels),
    }


def test_time_augmentation(model, task: Task, labels) -> list[dict[str, Any]]:
    """Accuracy and estimated cost (fraction of one full-size pass) of TTA at three budgets, alone and with the
    cascade's early exit, on the same trained model."""
    rows = []
    for budget in (1.0, 1.5, 2.0):
        for mode, thresholds in (("tta", 1.0), ("cascade+tta", None)):
            try:
                acc, result = accuracy_at(model, task, icpc_settings(model).levels, labels, thresholds=thresholds,
                                          combine="mean", budget=budget)
            except ValueError as error:  # a budget below the cheapest level
                rows.append({"mode": mode, "budget": budget, "error": str(error)})
                continue
            rows.append({"mode": mode, "budget": budget, "accuracy": acc,
                         "cost": result.summary()["flops_ratio"], "levels_used": result.summary()["mean_levels_used"]})
    return rows


def ablations(task: Task, seed: int, output_dir: str) -> dict[str, Any]:
    """Position strategies, each model evaluated at every level; training at one fixed low level."""
    labels = torch.tensor([f["label"] for f in task.test])
    rows = {}
    variants = {s: {**task.icpc, "position_strategy": s} for s in ("crop", "stride", "interpolate")}
    smallest = min(task.icpc.get("levels") or [0.5])
    variants["fixed-low-level"] = {**task.icpc, "levels": [smallest, 1.0], "level_weights": [1.0, 0.0],
                                   "uncompressed_last_epochs": 0}
    all_levels = sorted(set(task.icpc.get("levels") or []) | {1.0})
    for name, icpc in variants.items():
        run = train_once(task, seed, icpc, os.path.join(output_dir, f"ablation-{name}"))
        rows[name] = {"train_seconds": run["seconds"],
                      "accuracy_per_level": {f"{lv:g}": accuracy_at(run["model"], task, [lv], labels)[0]
                                             for lv in all_levels}}
        print(f"  ablation {name}: {rows[name]}", flush=True)
    if task.name == "image":
        from peers import add_patch_dropout, expected_token_ratio

        keep = expected_token_ratio(task.icpc["levels"], 7)
        run = train_once(task, seed, None, os.path.join(output_dir, "ablation-patchdropout"),
                         prepare=lambda model: add_patch_dropout(model, keep, seed))
        patch_model(run["model"], ICPCConfig(**{k: v for k, v in task.icpc.items() if k != "uncompressed_last_epochs"}))
        rows[f"PatchDropout (keeps {keep:.2f})"] = {
            "train_seconds": run["seconds"],
            "accuracy_per_level": {f"{lv:g}": accuracy_at(run["model"], task, [lv], labels)[0] for lv in all_levels}}
        print(f"  ablation patchdropout: {rows[f'PatchDropout (keeps {keep:.2f})']}", flush=True)
    return rows


def load_task(name: str, quick: bool) -> Task:
    import tasks

    return getattr(tasks, f"{name}_task")(quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modalities", nargs="+", default=["image", "text", "audio", "video"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadier on a shared CPU)")
    parser.add_argument("--output", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.output, exist_ok=True)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "torch": torch.__version__,
               "python": platform.python_version(), "torch_threads": args.threads}
    import transformers

    machine["transformers"] = transformers.__version__
    for name in args.modalities:
        task = load_task(name, args.quick)
        seeds = 1 if args.quick else args.seeds
        results = {"modality": name, "quick": args.quick, "machine": machine, "epochs": task.epochs,
                   "batch_size": task.batch_size, "train_size": len(task.train), "test_size": len(task.test),
                   "icpc": task.icpc, "seeds": []}
        started = time.perf_counter()
        for seed in range(seeds):
            work = os.path.join("/tmp", "icpc-bench", name, str(seed))
            baseline = train_once(task, seed, None, os.path.join(work, "baseline"))
            icpc_run = train_once(task, seed, task.icpc, os.path.join(work, "icpc"))
            row = {"seed": seed, **evaluate_pair(task, baseline, icpc_run)}
            results["seeds"].append(row)
            print(f"{name} seed {seed}: " + json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}),
                  flush=True)
        if not args.no_ablations and not args.quick and name == "image":
            results["ablations"] = ablations(task, 0, os.path.join("/tmp", "icpc-bench", name, "ablations"))
        results["wall_seconds"] = time.perf_counter() - started
        suffix = "-quick" if args.quick else ""
        with open(os.path.join(args.output, f"{name}{suffix}.json"), "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
