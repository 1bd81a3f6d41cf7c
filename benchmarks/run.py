"""ICPC against a plain Trainer, side by side in one run: training speed, accuracy, cascade, cost, ablations.

    python benchmarks/run.py                      # every modality, 3 seeds, ablations, then the report
    python benchmarks/run.py --modalities image --seeds 3
    python benchmarks/run.py --quick              # tiny data, seconds: keeps the harness working (CI)
    python benchmarks/report.py                   # docs/benchmarks.md and its plots again from the results

For each modality and seed the same model (same initial weights), data, epochs, batch size and optimiser are
trained twice: baseline = plain `Trainer` on full inputs with the usual collator; ICPC = patched model,
`ICPCDataCollator`, `ICPCCallback`. Both are evaluated at full size on the same test set, and the ICPC model's
cascade against its full-size inference at the same batch size (median of 3 timings). On seed 0 the ICPC model's
cascade thresholds are then calibrated on the validation split, and the ablations train the other variants.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
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
    baseline_args: dict = field(default_factory=dict)
    """TrainingArguments of every arm unless a run replaces them: the best the plain Trainer offers (text:
    group_by_length, which ICPC's pruned batches need as much)."""
    validation: list | None = None
    """Held-out samples for choosing cascade thresholds; None: no calibration."""


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


class StepAnatomy(TrainerCallback):
    """Seconds spent in each phase of the Trainer's steps: fetching and collating the batch, forward and backward
    (with gradient clipping), the optimizer step, and the rest (scheduler, zero_grad). The last three do not
    shrink with the input; they show why a speedup falls short of the FLOP reduction."""

    PHASES = ("batch", "forward_backward", "optimizer", "other")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.PHASES, 0.0)
        self.steps = 0
        self._last = 0.0

    def _lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self._last
        self._last = now

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._last = time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):
        self._lap("batch")

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self._lap("forward_backward")

    def on_optimizer_step(self, args, state, control, **kwargs):
        self._lap("optimizer")

    def on_step_end(self, args, state, control, **kwargs):
        self._lap("other")
        self.steps += 1

    def milliseconds_per_step(self) -> dict[str, float]:
        return {phase: 1000 * seconds / max(1, self.steps) for phase, seconds in self.seconds.items()}


class PeakMemory:
    """Peak resident memory above the level at start. Freed heap is handed back to the system first (malloc_trim)
    so a run cannot hide its peak in pages an earlier run left behind; the peak is then the kernel's high-water
    mark (VmHWM, reset through /proc/self/clear_refs), or, where that is unavailable, RSS sampled every 20 ms."""

    def __enter__(self):
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.kernel_peak = self._reset_high_water_mark()
        self.running = not self.kernel_peak
        self.thread = None
        if self.running:
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    @staticmethod
    def _reset_high_water_mark() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def _high_water_mark() -> int:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise OSError("no VmHWM in /proc/self/status")

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.running = False
        if self.thread is not None:
            self.thread.join()
        if self.kernel_peak:
            self.peak = self._high_water_mark()
        self.megabytes = (self.peak - self.start) / 2**20


def training_args(task: Task, output_dir: str, seed: int, overrides: dict | None = None) -> TrainingArguments:
    values = dict(
        output_dir=output_dir, num_train_epochs=task.epochs, per_device_train_batch_size=task.batch_size,
        per_device_eval_batch_size=task.batch_size, learning_rate=task.learning_rate, weight_decay=0.05,
        warmup_steps=20, lr_scheduler_type="cosine", save_strategy="no", report_to=[], use_cpu=True, seed=seed,
        dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True, logging_steps=10_000,
    )
    values.update(task.extra_args)
    values.update(overrides or {})
    return TrainingArguments(**values)


def train_once(task: Task, seed: int, icpc: dict | None, output_dir: str, prepare: Callable | None = None,
               args: dict | None = None, callbacks: list | None = None, eval_dataset: list | None = None) -> dict:
    """Train one model; icpc=None is the baseline (every arm with `task.baseline_args` unless `args` replaces them);
    `prepare` may add a peer method or an ablation hook to the fresh model; `callbacks` are added to the Trainer.
    `eval_dataset` reaches the Trainer as a user's would (no evaluation schedule): ICPCCallback calibrates the
    served cascade on it at the end of training."""
    set_seed(seed)
    model = task.new_model(seed)
    if prepare is not None:
        model = prepare(model)
    epoch_timer, anatomy = EpochTimer(), StepAnatomy()
    callbacks = [epoch_timer, anatomy, *(callbacks or [])]
    icpc_callback = None
    args = task.baseline_args if args is None else args
    if icpc is None:
        collator = TimedCollator(task.baseline_collator)
    else:
        settings = ICPCConfig(seed=seed, **icpc)
        model = patch_model(model, settings)
        collator = TimedICPCCollator(task.processor, settings)
        icpc_callback = ICPCCallback()
        callbacks.append(icpc_callback)
    trainer = Trainer(model=model, args=training_args(task, output_dir, seed, args), train_dataset=task.train,
                      eval_dataset=eval_dataset, data_collator=collator, callbacks=callbacks)
    with PeakMemory() as memory:
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    totals = icpc_callback.train_totals if icpc_callback is not None else None
    return {"model": model, "seconds": seconds, "epoch_seconds": epoch_timer.epoch_seconds,
            "collator_share": collator.seconds / seconds, "peak_memory_mb": memory.megabytes,
            "step_ms": anatomy.milliseconds_per_step(), "steps": anatomy.steps,
            "token_ratio": totals["tokens"] / totals["full_tokens"] if totals else 1.0,
            "flops_saved": 1.0 - totals["flops"] / totals["full_flops"] if totals else 0.0}


def accuracy_at(model, task: Task, levels, labels, **kwargs) -> tuple[float, Any]:
    result = run_cascade(model, task.test, task.processor, levels=levels, batch_size=task.batch_size, **kwargs)
    return float((result.predictions == labels).float().mean()), result


def timed_pair(first: Callable, second: Callable, repeats: int = 3) -> tuple[float, float]:
    """Median seconds of two jobs, run alternately (ABBA...) so drift in the machine's speed hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for repeat in range(repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for which in order:
            start = time.perf_counter()
            (first, second)[which]()
            times[which].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def evaluate_pair(task: Task, baseline: dict, icpc_run: dict) -> dict[str, Any]:
    labels = torch.tensor([f["label"] for f in task.test])
    base_model, model = baseline["model"], icpc_run["model"]
    patch_model(base_model, ICPCConfig())  # full-size evaluation through the same code; bit-identical
    base_acc, _ = accuracy_at(base_model, task, [1.0], labels)
    icpc_acc, _ = accuracy_at(model, task, [1.0], labels)
    cascade_acc, cascade = accuracy_at(model, task, None, labels)
    full_seconds, cascade_seconds = timed_pair(lambda: accuracy_at(model, task, [1.0], labels),
                                               lambda: accuracy_at(model, task, None, labels))
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
        "step_ms_baseline": baseline["step_ms"], "step_ms_icpc": icpc_run["step_ms"],
        "steps_baseline": baseline["steps"], "steps_icpc": icpc_run["steps"],
        "forward_backward_speedup": baseline["step_ms"]["forward_backward"] / icpc_run["step_ms"]["forward_backward"],
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


@dataclass
class Variant:
    """One ablation: ICPC settings (None: a baseline), an optional hook on the fresh model, Trainer overrides."""

    icpc: dict | None
    prepare: Callable | None = None
    args: dict | None = None
    levels: list[float] | None = None
    """Levels to evaluate at (None: the ICPC levels of the main run)."""
    token_ratio: float | None = None
    """Share of the tokens a peer keeps in training (ICPC variants measure theirs)."""


def ablation_variants(task: Task, main_run: dict) -> dict[str, Variant]:
    """What each part of ICPC adds: position strategy (grids) or original positions (text), the level schedule
    (one fixed low level; on grids also the last epoch at full size and uniform draws), and the peers run through
    the same embeddings."""
    settings = icpc_settings(main_run["model"])
    variants: dict[str, Variant] = {}
    if settings.model_type in ("bert", "distilbert", "roberta", "xlm-roberta", "camembert"):
        from peers import reindex_positions

        variants["re-indexed positions (0..n-1 after pruning)"] = Variant(task.icpc, prepare=reindex_positions)
        variants["baseline without group_by_length (plain random batches)"] = Variant(None, args={}, levels=[1.0])
    else:
        for strategy in ("crop", "stride", "interpolate"):
            icpc = {**task.icpc, "position_strategy": strategy}
            if icpc.get("trim_padding") and strategy != "crop":
                icpc["trim_padding"] = False  # trimming is defined for crop positions only
            variants[strategy] = Variant(icpc)
        # The schedule's trade between speed and full-size accuracy (grids only: it reads the same on text, and
        # text's ablations already take the longest).
        if not task.icpc.get("uncompressed_last_epochs"):
            variants["last epoch uncompressed"] = Variant({**task.icpc, "uncompressed_last_epochs": 1})
        if task.icpc.get("level_weights"):
            variants["levels drawn uniformly"] = Variant({**task.icpc, "level_weights": None})
    smallest = min(settings.levels)
    variants[f"one fixed level {smallest:.3g}"] = Variant({**task.icpc, "levels": [smallest, 1.0],
                                                          "level_weights": [1.0, 0.0], "uncompressed_last_epochs": 0})
    if settings.model_type == "vit":
        from peers import add_patch_dropout

        keep = main_run["token_ratio"]
        variants[f"PatchDropout (keeps {keep:.2f} of the patches)"] = Variant(
            None, prepare=lambda model: add_patch_dropout(model, keep, 0), token_ratio=keep)
    return variants


def ablations(task: Task, main_run: dict, output_dir: str) -> dict[str, Any]:
    """Seed 0: every variant trained and evaluated at each level; a variant equal to the main ICPC settings reuses
    the main run instead of training again."""
    labels = torch.tensor([f["label"] for f in task.test])
    settings = icpc_settings(main_run["model"])
    all_levels = sorted(set(settings.levels) | {1.0})
    rows = {}
    for index, (name, variant) in enumerate(ablation_variants(task, main_run).items()):
        reused = (variant.icpc is not None and variant.prepare is None
                  and ICPCConfig(**variant.icpc) == ICPCConfig(**task.icpc))
        run = main_run if reused else train_once(task, 0, variant.icpc, os.path.join(output_dir, f"ablation-{index}"),
                                                 prepare=variant.prepare, args=variant.args)
        model = run["model"]
        if variant.icpc is None:  # evaluated through the same code at full size and below (bit-identical at 1.0)
            patch_model(model, ICPCConfig(**{k: v for k, v in settings.to_dict().items()
                                             if k not in ("model_type", "geometry", "uncompressed_last_epochs",
                                                          "level_weights")}))
        rows[name] = {"train_seconds": run["seconds"], "token_ratio": variant.token_ratio or run["token_ratio"],
                      "main_run": reused,
                      "accuracy_per_level": {f"{lv:g}": accuracy_at(model, task, [lv], labels)[0]
                                             for lv in (variant.levels or all_levels)}}
        print(f"  ablation {name}: {rows[name]}", flush=True)
    return rows


def calibrate(task: Task, model, plots: str, max_accuracy_loss: float = 0.005) -> dict[str, Any] | None:
    """Thresholds chosen on the validation split (`icpc_hf.training.calibrate`), the cascade then measured on test."""
    from icpc_hf.training.calibrate import calibrate_thresholds

    if task.validation is None:
        return None
    calibration = calibrate_thresholds(model, task.validation, task.processor, [f["label"] for f in task.validation],
                                       max_accuracy_loss=max_accuracy_loss, batch_size=task.batch_size)
    os.makedirs(plots, exist_ok=True)
    calibration.plot(os.path.join(plots, f"frontier-{task.name}.png"))
    result = {"max_accuracy_loss": max_accuracy_loss, "levels": calibration.levels,
              "frontier": [vars(p) for p in calibration.frontier()], "thresholds": None}
    if calibration.chosen is None:
        return result
    labels = torch.tensor([f["label"] for f in task.test])
    full_accuracy, _ = accuracy_at(model, task, [1.0], labels)
    calibration.apply(model)
    cascade_accuracy, cascade = accuracy_at(model, task, None, labels)
    full_seconds, cascade_seconds = timed_pair(lambda: accuracy_at(model, task, [1.0], labels),
                                               lambda: accuracy_at(model, task, None, labels))
    result.update(
        levels=calibration.chosen.levels, thresholds=calibration.chosen.thresholds,
        validation={"full_accuracy": calibration.full_accuracy, "cascade_accuracy": calibration.chosen.accuracy,
                    "cost": calibration.chosen.cost},
        test={"full_accuracy": full_accuracy, "cascade_accuracy": cascade_accuracy, "full_seconds": full_seconds,
              "cascade_seconds": cascade_seconds, "speedup": full_seconds / cascade_seconds,
              "flops_ratio": cascade.summary()["flops_ratio"],
              "answered": {k: v for k, v in cascade.summary().items() if k.startswith("answered_at_")}})
    return result


def load_task(name: str, quick: bool) -> Task:
    import tasks

    return getattr(tasks, f"{name}_task")(quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modalities", nargs="+", default=["image", "text", "audio", "video"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--no-report", action="store_true", help="skip writing docs/benchmarks.md and the README "
                        "headline (with --quick the report goes to OUTPUT/benchmarks.md)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads (default: every core; use 1 per process when sharing the machine)")
    parser.add_argument("--output", default=os.path.join(HERE, "results"))
    parser.add_argument("--plots", help="where the calibration frontier plots go (default: docs/images, or "
                        "OUTPUT/images with --quick)")
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
        results["baseline_args"] = task.baseline_args
        started = time.perf_counter()
        work = os.path.join(tempfile.gettempdir(), "icpc-bench", name)
        for seed in range(seeds):
            baseline = train_once(task, seed, None, os.path.join(work, str(seed), "baseline"))
            icpc_run = train_once(task, seed, task.icpc, os.path.join(work, str(seed), "icpc"))
            row = {"seed": seed, **evaluate_pair(task, baseline, icpc_run)}
            results["seeds"].append(row)
            print(f"{name} seed {seed}: " + json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}),
                  flush=True)
            if seed == 0:
                main_run = icpc_run
        if not args.no_ablations:
            results["ablations"] = ablations(task, main_run, os.path.join(work, "ablations"))
        suffix = "-quick" if args.quick else ""
        plots = args.plots or os.path.join(args.output if args.quick else os.path.join(HERE, "..", "docs"), "images")
        results["calibration"] = calibrate(task, main_run["model"], plots)
        results["wall_seconds"] = time.perf_counter() - started
        with open(os.path.join(args.output, f"{name}{suffix}.json"), "w") as handle:
            json.dump(results, handle, indent=2)
    if not args.no_report:
        import report

        report.main(["--results", args.output] + (["--quick", "--output", os.path.join(args.output, "benchmarks.md")]
                                                  if args.quick else []))


if __name__ == "__main__":
    main()
