"""What every example measures the same way: training wall time, accuracy, and the cascade against full inputs."""

from __future__ import annotations

import gzip
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from icpc_hf import run_cascade

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def read_idx(path: str) -> np.ndarray:
    """An IDX file (the MNIST format): big-endian dimensions after a 4-byte magic number, then uint8 data."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images (N, 28, 28) uint8 and labels, from Debian's dataset-fashion-mnist."""
    prefix = "train" if split == "train" else "t10k"
    try:
        images = read_idx(f"{FASHION_MNIST}/{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(f"{FASHION_MNIST}/{prefix}-labels-idx1-ubyte.gz")
    except FileNotFoundError:
        raise SystemExit(
            f"Fashion-MNIST not found in {FASHION_MNIST}: run `apt-get install -y dataset-fashion-mnist`."
        ) from None
    return images, labels


def scale_varied(items: torch.Tensor, canvas: int, smallest: int, seed: int) -> torch.Tensor:
    """Each item (N, C, h, w, values in [0, 1]) resized to a random side in [smallest, canvas] and pasted at a random
    place on a blank canvas. Small items then need the full resolution and large ones do not: the situation input
    compression is for (a data set where every item fills the frame is one that simply training smaller solves)."""
    rng = np.random.default_rng(seed)
    placed = torch.zeros(len(items), items.shape[1], canvas, canvas)
    for index, side in enumerate(rng.integers(smallest, canvas + 1, size=len(items))):
        side = int(side)
        item = torch.nn.functional.interpolate(
            items[index : index + 1], size=(side, side), mode="bilinear", antialias=True, align_corners=False
        )
        top, left = (int(v) for v in rng.integers(0, canvas - side + 1, size=2))
        placed[index, :, top : top + side, left : left + side] = item[0]
    return placed


class AccuracyOverTime(TrainerCallback):
    """After every `every` epochs (and the last), with the clock stopped, accuracy on
    `validation` at each level and on `test` at the level best there (the one a user would serve) and at full size.

    Each point of `curve` holds the epoch, the training seconds so far (evaluation excluded), both accuracy maps,
    `served_level` and `served_accuracy`. A plain model is patched for the evaluation only (bit-identical at full
    size) and unpatched again. With `name`, a progress bar of that name counts the epochs and shows the latest
    accuracies (the Trainer's own bar is off in the examples: it would count steps, not evaluations).
    """

    def __init__(
        self,
        validation: Sequence[dict],
        test: Sequence[dict],
        processor: Any,
        levels: Sequence[float],
        batch_size: int = 64,
        every: int = 1,
        name: str | None = None,
    ) -> None:
        self.validation, self.test, self.processor = validation, test, processor
        self.levels, self.batch_size, self.every, self.name = sorted(levels), batch_size, every, name
        self.curve: list[dict] = []
        self._started = self._paused = 0.0
        self._bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._started, self._paused = time.perf_counter(), 0.0
        if self.name:
            from tqdm.auto import tqdm  # installed with transformers

            self._bar = tqdm(total=int(args.num_train_epochs), desc=f"{self.name:>14}", unit="epoch", leave=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.close()

    def accuracy(self, model: Any, features: Sequence[dict], level: float) -> float:
        result = run_cascade(model, features, self.processor, levels=[level], batch_size=self.batch_size)
        return float((result.predictions == torch.tensor([f["label"] for f in features])).float().mean())

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        from icpc_hf import ICPCConfig, is_patched, patch_model, unpatch_model

        pause = time.perf_counter()
        epoch = round(float(state.epoch))
        if epoch % self.every and epoch < args.num_train_epochs:
            self._advance_bar()
            return
        temporary = not is_patched(model)
        if temporary:
            patch_model(model, ICPCConfig(levels=self.levels))
        was_training = model.training
        model.eval()
        point = {
            "epoch": epoch,
            "train_seconds": pause - self._started - self._paused,
            "validation": {f"{lv:g}": self.accuracy(model, self.validation, lv) for lv in self.levels},
        }
        served = max(self.levels, key=lambda lv: (point["validation"][f"{lv:g}"], -lv))  # the smaller on a tie
        point["test"] = {f"{lv:g}": self.accuracy(model, self.test, lv) for lv in sorted({served, 1.0})}
        point["served_level"], point["served_accuracy"] = f"{served:g}", point["test"][f"{served:g}"]
        model.train(was_training)
        if temporary:
            unpatch_model(model)
        self.curve.append(point)
        self._advance_bar(point)
        self._paused += time.perf_counter() - pause

    def _advance_bar(self, point: dict | None = None) -> None:
        """One epoch more on the bar, with the latest evaluation's figures when there is one."""
        if self._bar is None:
            return
        if point is not None:
            self._bar.set_postfix_str(
                f"{point['train_seconds']:.0f} s, test accuracy {point['test']['1']:.3f} at full size, "
                f"{point['served_accuracy']:.3f} as served (level {point['served_level']})",
                refresh=False,
            )
        self._bar.update(1)

    def first_reaching(self, accuracy: float) -> dict | None:
        """The first point whose served accuracy reaches `accuracy`."""
        return next((p for p in self.curve if p["served_accuracy"] >= accuracy - 1e-12), None)


def add_run_arguments(parser: Any, output_dir: str, threads: int = 1) -> None:
    """The options every example takes: --seed, --threads, --quick (a smoke run under a minute), --output-dir,
    --report-to."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=threads,
        help="torch threads; on a shared CPU more threads than free cores make small steps slower",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run, under a minute")
    parser.add_argument("--output-dir", default=output_dir)
    add_report_argument(parser)


def add_report_argument(parser: Any) -> None:
    parser.add_argument(
        "--report-to",
        default="none",
        help="tensorboard, wandb, ...: the Trainer's logs, icpc/ figures included (under "
        "OUTPUT_DIR/*/runs for TensorBoard; pip install tensorboard)",
    )


def cpu_training_args(output_dir: str, report_to: str = "none", **settings: Any):
    """TrainingArguments with what every example shares: CPU, no checkpoints, reporting only when asked, every feature
    column kept for the collator, and no DataLoader workers: the data here is decoded already, and on two cores workers
    would only compete with training (ICPC works with them: `dataloader_num_workers=N`)."""
    from transformers import TrainingArguments

    defaults = dict(
        use_cpu=True,
        report_to=[] if report_to == "none" else report_to,
        save_strategy="no",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    return TrainingArguments(output_dir=output_dir, **{**defaults, **settings})


def train_and_time(trainer: Any) -> float:
    """Wall seconds of `trainer.train()`."""
    return train_timed(trainer)[0]


def train_timed(trainer: Any) -> tuple[float, float]:
    """Wall and CPU seconds of `trainer.train()`: on a machine shared with other jobs, CPU time is steadier."""
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    return time.perf_counter() - wall, time.process_time() - cpu


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


def timed_pair(first: Callable[[], Any], second: Callable[[], Any], repeats: int = 3) -> tuple[float, float]:
    """Median seconds of two jobs, run alternately (ABBA...) so drift in the machine's speed hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for repeat in range(repeats):
        for which in (0, 1) if repeat % 2 == 0 else (1, 0):
            start = time.perf_counter()
            (first, second)[which]()
            times[which].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def serve_and_time(
    model: Any, features: Sequence[dict], processor: Any, batch_size: int = 64, repeats: int = 3
) -> dict[str, Any]:
    """The model's cascade (as its settings serve it) and one full-size pass over the same samples: both results
    (`full`, `cascade`) and their median seconds, timed alternately. The one place serving is timed."""
    results: dict[str, Any] = {}

    def full() -> None:
        results["full"] = run_cascade(model, features, processor, levels=[1.0], batch_size=batch_size)

    def cascade() -> None:
        results["cascade"] = run_cascade(model, features, processor, batch_size=batch_size)

    results["full_seconds"], results["cascade_seconds"] = timed_pair(full, cascade, repeats)
    return results


def cascade_vs_full(
    model: Any, features: Sequence[dict], processor: Any, labels: Sequence[int], batch_size: int = 64, repeats: int = 3
) -> dict[str, float]:
    """Accuracy and median wall time of the cascade and of one uncompressed pass, on the same samples."""
    served = serve_and_time(model, features, processor, batch_size, repeats)
    summary = served["cascade"].summary()
    return {
        "full_accuracy": accuracy(served["full"].predictions, labels),
        "full_seconds": served["full_seconds"],
        "cascade_accuracy": accuracy(served["cascade"].predictions, labels),
        "cascade_seconds": served["cascade_seconds"],
        "cascade_speedup": served["full_seconds"] / served["cascade_seconds"],
        "cascade_flops_ratio": summary["flops_ratio"],
        **{k: v for k, v in summary.items() if k.startswith("answered_at_")},
    }


def save_outputs(
    model: Any,
    processor: Any,
    output_dir: str,
    tables: Sequence[str],
    figures: dict[str, Any],
    callback: Any = None,
) -> str:
    """The Hub-ready folder (with the printed tables in its card, and with `callback`, the ICPCCallback that trained
    the model, what it measured: the served frontier, its plot) and results.json, under `output_dir`."""
    import json
    import os

    from icpc_hf import save_for_hub

    folder = save_for_hub(
        model, processor, os.path.join(output_dir, "hub"), results="\n\n".join(tables), callback=callback
    )
    with open(os.path.join(output_dir, "results.json"), "w") as handle:
        json.dump(figures, handle, indent=2)
    print(f"Hub-ready folder: {folder}  (pipeline(model=folder, trust_remote_code=True))")
    return folder


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
