"""What every example measures the same way: training wall time, accuracy, and the cascade against full inputs."""

from __future__ import annotations

import statistics
import time
from typing import Any, Sequence

import torch

from icpc_hf import run_cascade


def train_and_time(trainer: Any) -> float:
    """Wall seconds of `trainer.train()`."""
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def accuracy(predictions: Sequence[int] | torch.Tensor, labels: Sequence[int]) -> float:
    """Accuracy through `evaluate` when its metric script can be loaded; evaluate fetches it from the Hub, so
    offline the same ratio is computed here."""
    predictions = torch.as_tensor(predictions).cpu().tolist()
    labels = torch.as_tensor(labels).cpu().tolist()
    try:
        import evaluate

        return float(evaluate.load("accuracy").compute(predictions=predictions, references=labels)["accuracy"])
    except Exception:  # no Hub: evaluate cannot fetch the metric script
        return sum(int(p == t) for p, t in zip(predictions, labels)) / len(labels)


def cascade_vs_full(
    model: Any, features: Sequence[dict], processor: Any, labels: Sequence[int], batch_size: int = 64, repeats: int = 3
) -> dict[str, float]:
    """Accuracy and median wall time of the cascade and of one uncompressed pass, on the same samples."""
    full_times, cascade_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        full = run_cascade(model, features, processor, levels=[1.0], batch_size=batch_size)
        full_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        cascade = run_cascade(model, features, processor, batch_size=batch_size)
        cascade_times.append(time.perf_counter() - start)
    full_time, cascade_time = statistics.median(full_times), statistics.median(cascade_times)
    return {
        "full_accuracy": accuracy(full.predictions, labels),
        "full_seconds": full_time,
        "cascade_accuracy": accuracy(cascade.predictions, labels),
        "cascade_seconds": cascade_time,
        "cascade_speedup": full_time / cascade_time,
        "cascade_flops_ratio": cascade.summary()["flops_ratio"],
        **{k: v for k, v in cascade.summary().items() if k.startswith("answered_at_")},
    }


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of `rows` (dicts with the same keys), printed and returned."""
    keys = list(rows[0])
    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    lines = [f"### {title}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(row[k]) for k in keys) + " |" for row in rows]
    text = "\n".join(lines)
    print(text)
    return text
