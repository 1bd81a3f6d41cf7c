"""The core both benchmarks share: a task record, an arm record, train-and-evaluate, serve-and-time, the README splice.

`run.py` (fixed epochs, ICPC beside a plain Trainer) and `convergence.py` (time to accuracy) differ only in what they
ask of a trained model; the records, the training run and the serving measurement are these, so a figure means the
same in both reports. Task records live in `tasks.py`; nothing here imports a benchmark script.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainingArguments, set_seed

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULT_DOCS = os.path.join(ROOT, "docs", "results")  # the generated pages and their plots
RESULTS_INDEX = os.path.join(RESULT_DOCS, "README.md")  # the results index: the generated summary tables
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, os.path.join(ROOT, "examples"))

from _shared import serve_and_time  # noqa: E402
from meters import EpochTimer, PeakMemory, StepAnatomy, TimedCollator, TimedICPCCollator  # noqa: E402

from icpc_hf import ICPCCallback, ICPCConfig, patch_model, registration_for, run_cascade  # noqa: E402


@dataclass
class Arm:
    """One way of training a task's model: ICPC settings (None: a plain Trainer), an optional hook on the fresh
    model (a peer or an ablation), Trainer overrides, and the levels it is evaluated at."""

    icpc: dict | None
    prepare: Callable | None = None
    args: dict | None = None
    """TrainingArguments replacing the task's `baseline_args` (None: keep them)."""
    eval_levels: list[float] | None = None
    """Levels to evaluate at (None: the benchmark's own choice, the task's or the main run's levels)."""
    note: str = ""
    token_ratio: float | None = None
    """Share of the tokens a peer keeps in training (ICPC arms measure theirs)."""
    metrics: Callable | None = None
    """The Trainer's `compute_metrics` (what `metric_for_best_model` can name); None: the loss alone."""


@dataclass
class Task:
    """One benchmark task: data, a same-weights model factory, the training settings every arm shares, and (time to
    accuracy) the arms it runs and the levels they are evaluated at."""

    name: str
    train: list
    test: list
    """Features the accuracies are reported on."""
    new_model: Callable[[int], Any]
    processor: Any
    baseline_collator: Callable
    epochs: int
    batch_size: int
    learning_rate: float
    validation: list | None = None
    """Held-out features that choose the serving level and calibrate the cascade; None: no calibration."""
    reserve: list | None = None
    """More held-out features no other split uses: `convergence.py --reserve-passes` keeps the shipped model's level
    passes over them, to replay the cascade's calibration on a larger set."""
    icpc: dict = field(default_factory=dict)
    """The fixed-epoch benchmark's ICPC settings (run.py)."""
    baseline_args: dict = field(default_factory=dict)
    """TrainingArguments of every arm unless it replaces them: the best the plain Trainer offers (text:
    group_by_length, which ICPC's pruned batches need as much)."""
    levels: list[float] = field(default_factory=list)
    """Time to accuracy: the levels every compressed arm is evaluated at (full size last)."""
    arms: dict[str, Arm] = field(default_factory=dict)
    """Time to accuracy: the arms trained on this task, by name."""
    eval_every: int = 1
    """Time to accuracy: evaluate after every this many epochs (and after the last)."""


def modality_of(model) -> str:
    """The registry's name for a model's modality ("image", "text", ...): benchmarks ask it, never a model type."""
    return registration_for(model.config).modality.name


def labels_of(features: list[dict]) -> torch.Tensor:
    return torch.tensor([f["label"] for f in features])


def data_fingerprint(task: Task) -> str:
    """SHA-256 of every split's features, in order: runs are comparable only on the same data, and tasks that read a
    machine's current indexes (the Debian descriptions) can draw other texts on another day."""
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value):
                digest.update(repr(key).encode())
                feed(value[key])
        elif isinstance(value, (list, tuple)):
            digest.update(b"[%d" % len(value))
            for item in value:
                feed(item)
        elif isinstance(value, torch.Tensor):
            digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
            digest.update(value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
        elif isinstance(value, np.ndarray):
            digest.update(f"{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).tobytes())
        elif value is None or isinstance(value, (bool, int, float, str)):
            digest.update(repr(value).encode())
        else:  # an image or another object: its pickled state (a repr may abbreviate)
            digest.update(pickle.dumps(value))

    for split in (task.train, task.validation, task.test, task.reserve):
        feed(split)
    return digest.hexdigest()


def training_args(task: Task, output_dir: str, seed: int, overrides: dict | None = None) -> TrainingArguments:
    """The TrainingArguments every arm of every benchmark starts from (CPU, cosine schedule, no checkpoints)."""
    values = dict(
        output_dir=output_dir,
        num_train_epochs=task.epochs,
        per_device_train_batch_size=task.batch_size,
        per_device_eval_batch_size=task.batch_size,
        learning_rate=task.learning_rate,
        weight_decay=0.05,
        warmup_steps=20,
        lr_scheduler_type="cosine",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
        logging_steps=10_000,
    )
    values.update(overrides or {})
    return TrainingArguments(**values)


def train_arm(
    task: Task, arm: Arm, seed: int, output_dir: str, callbacks: list | None = None, eval_dataset: list | None = None
) -> dict[str, Any]:
    """Train one model the arm's way and measure the run. `callbacks` are added to the Trainer; `eval_dataset`
    reaches it as a user's would (no evaluation schedule): ICPCCallback calibrates the served cascade on it at the
    end of training; without it the model keeps the cascade its settings configure."""
    set_seed(seed)
    model = task.new_model(seed)
    if arm.prepare is not None:
        model = arm.prepare(model)
    epoch_timer, anatomy = EpochTimer(), StepAnatomy()
    callbacks = [epoch_timer, anatomy, *(callbacks or [])]
    icpc_callback = None
    if arm.icpc is None:
        collator = TimedCollator(task.baseline_collator)
    else:
        settings = ICPCConfig(seed=seed, **arm.icpc)
        model = patch_model(model, settings)
        collator = TimedICPCCollator(task.processor, settings)
        icpc_callback = ICPCCallback(calibrate=eval_dataset is not None)  # without one: the configured cascade
        callbacks.append(icpc_callback)
    overrides = task.baseline_args if arm.args is None else arm.args
    trainer = Trainer(
        model=model,
        args=training_args(task, output_dir, seed, overrides),
        train_dataset=task.train,
        eval_dataset=eval_dataset,
        data_collator=collator,
        callbacks=callbacks,
        compute_metrics=arm.metrics,
    )
    with PeakMemory() as memory:
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    totals = icpc_callback.train_totals if icpc_callback is not None else None
    plan = (
        icpc_callback.levelled_collate.plan
        if icpc_callback is not None and icpc_callback.levelled_collate is not None
        else None
    )
    return {
        "model": model,
        "seconds": seconds,
        "epoch_seconds": epoch_timer.epoch_seconds,
        "collator_share": collator.seconds / seconds,
        "peak_memory_mb": memory.megabytes,
        "step_ms": anatomy.milliseconds_per_step(),
        "steps": anatomy.steps,
        "token_ratio": totals["tokens"] / totals["full_tokens"] if totals else 1.0,
        "flops_saved": 1.0 - totals["flops"] / totals["full_flops"] if totals else 0.0,
        "trainer_eval_seconds": sum(h.get("eval_runtime", 0.0) for h in trainer.state.log_history),
        "epoch_floors": dict(floors)
        if (floors := getattr(getattr(plan, "schedule", None), "epoch_floors", None))
        else None,
        "calibration": icpc_callback.calibration if icpc_callback is not None else None,
        "compensation": icpc_callback.compensation.report if icpc_callback is not None else None,
        "ship_check": icpc_callback.shipping.ship_check if icpc_callback is not None else None,
    }


def accuracy_at(model, task: Task, levels: list[float] | None, **kwargs) -> tuple[float, Any]:
    """Test accuracy of the cascade over `levels` (None: the model's own cascade), and the cascade's result."""
    result = run_cascade(model, task.test, task.processor, levels=levels, batch_size=task.batch_size, **kwargs)
    return float((result.predictions == labels_of(task.test)).float().mean()), result


def served(model, task: Task) -> dict[str, Any]:
    """The model's cascade as its settings serve it, against its own full-size inference on the task's test set:
    accuracies, median seconds (timed alternately), speedup, estimated FLOPs and where samples were answered."""
    timing = serve_and_time(model, task.test, task.processor, task.batch_size)
    labels = labels_of(task.test)
    summary = timing["cascade"].summary()
    return {
        "full_accuracy": float((timing["full"].predictions == labels).float().mean()),
        "cascade_accuracy": float((timing["cascade"].predictions == labels).float().mean()),
        "full_seconds": timing["full_seconds"],
        "cascade_seconds": timing["cascade_seconds"],
        "speedup": timing["full_seconds"] / timing["cascade_seconds"],
        "flops_ratio": summary["flops_ratio"],
        "answered": {k: v for k, v in summary.items() if k.startswith("answered_at_")},
        "result": timing["cascade"],
    }


def splice(path: str, marker: str, text: str) -> bool:
    """Replace what stands between `<!-- MARKER:start -->` and `<!-- MARKER:end -->` in the file at `path` (the
    results index's tables, generated docs); False, and nothing written, where the file lacks the markers."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    with open(path) as handle:
        document = handle.read()
    if start not in document or end not in document:
        return False
    before, rest = document.split(start, 1)
    after = rest.split(end, 1)[1]
    with open(path, "w") as handle:
        handle.write(f"{before}{start}\n{text.rstrip(chr(10))}\n{end}{after}")
    return True


def pyplot():
    """matplotlib's pyplot drawing to files only (no display on a benchmark machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
