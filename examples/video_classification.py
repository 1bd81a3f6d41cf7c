"""Video classification with VideoMAE on clips of real Fashion-MNIST items in motion, with and without ICPC.

Each clip shows one Fashion-MNIST item sliding across a noisy canvas in one of four directions. The class is
the direction *and* the kind of item (a top or a shoe), so a model needs time (which way it moves) and space
(what it is). A small VideoMAE is trained twice with the same settings (plain Trainer on full clips; ICPC
through ICPCDataCollator + ICPCCallback, fewer and smaller frames drawn per clip per epoch), then the ICPC
model's cascade is compared with full-size inference.

Needs `apt-get install -y dataset-fashion-mnist` (real images, read from /usr/share/datasets/fashion-mnist).

    python examples/video_classification.py [--epochs 10] [--train 3000] [--quick] [--output-dir outputs/video]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import (
    Trainer,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
    VideoMAEImageProcessor,
    default_data_collator,
    set_seed,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import (  # noqa: E402
    accuracy,
    add_run_arguments,
    cascade_vs_full,
    cpu_training_args,
    load_fashion_mnist,
    print_table,
    save_outputs,
    train_and_time,
)

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model, run_cascade  # noqa: E402

NUM_FRAMES, TUBELET, CANVAS, PATCH, ITEM = 8, 2, 32, 8, 14
DIRECTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}
# Fashion-MNIST classes: T-shirt, pullover, coat, shirt / sandal, sneaker, ankle boot
KINDS = {"top": (0, 2, 4, 6), "shoe": (5, 7, 9)}


@dataclass(frozen=True)
class Motion:
    """What the clips of a task show: which kinds of item (Fashion-MNIST classes) move which ways, on what canvas,
    over how many frames. A class is a (kind, direction) pair."""

    kinds: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(KINDS))
    directions: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DIRECTIONS))
    canvas: int = CANVAS
    num_frames: int = NUM_FRAMES

    @property
    def labels(self) -> list[str]:
        return [f"{kind} moving {direction}" for kind in self.kinds for direction in self.directions]


SLIDING = Motion()
"""The example's clips: tops or shoes sliding right, left, down or up across a 32-pixel canvas (a 4 x 4 grid)."""
DIAGONAL = Motion(
    kinds={"trouser": (1,), "dress": (3,), "bag": (8,)},
    directions={"down-right": (1, 1), "down-left": (1, -1), "up-right": (-1, 1), "up-left": (-1, -1)},
    canvas=48,
)
"""Other items, other motions, another grid: trousers, dresses or bags moving diagonally on a 48-pixel canvas (6 x 6)."""
LABELS = SLIDING.labels


def load_items(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_fashion_mnist(split)
    small = torch.nn.functional.interpolate(
        torch.from_numpy(images[:, None].astype(np.float32)), size=(ITEM, ITEM), mode="bilinear", antialias=True
    )
    return small[:, 0].numpy(), labels


def start(rng: np.random.Generator, step: int, travel: int, canvas: int = CANVAS) -> int:
    """A start coordinate that keeps the whole item on the canvas along its path."""
    if step == 0:
        return int(rng.integers(0, canvas - ITEM + 1))
    return (0 if step > 0 else travel) + int(rng.integers(0, canvas - ITEM - travel + 1))


def make_clips(count: int, split: str, seed: int, motion: Motion = SLIDING) -> tuple[np.ndarray, np.ndarray]:
    """`count` uint8 clips (frames, height, width, 1) and their labels, the item moving 2 px per frame."""
    items, item_labels = load_items(split)
    rng = np.random.default_rng(seed)
    kind_of = {c: k for k, (_, classes) in enumerate(motion.kinds.items()) for c in classes}
    pool = np.array([i for i, c in enumerate(item_labels) if int(c) in kind_of])
    frames, canvas = motion.num_frames, motion.canvas
    clips = rng.normal(20, 12, (count, frames, canvas, canvas)).clip(0, 255)
    labels = np.empty(count, dtype=np.int64)
    travel = 2 * (frames - 1)
    steps = list(motion.directions.values())
    for n in range(count):
        index = rng.choice(pool)
        direction = rng.integers(len(steps))
        step_row, step_col = steps[direction]
        row, col = (start(rng, step, travel, canvas) for step in (step_row, step_col))
        for f in range(frames):
            r, c = row + 2 * f * step_row, col + 2 * f * step_col
            clips[n, f, r : r + ITEM, c : c + ITEM] = np.maximum(clips[n, f, r : r + ITEM, c : c + ITEM], items[index])
        labels[n] = kind_of[int(item_labels[index])] * len(steps) + direction
    return clips[..., None].astype(np.uint8), labels


def clip_features(processor: VideoMAEImageProcessor, clips: np.ndarray, labels: np.ndarray) -> list[dict]:
    """The processor's `pixel_values` (frames x 1 x 32 x 32) per clip, with its label."""
    pixel_values = torch.cat(
        [processor(list(clips[i : i + 256]), return_tensors="pt")["pixel_values"] for i in range(0, len(clips), 256)]
    )
    return [{"pixel_values": pixel_values[i], "label": int(labels[i])} for i in range(len(clips))]


def new_model(seed: int, motion: Motion = SLIDING) -> VideoMAEForVideoClassification:
    set_seed(seed)
    labels = motion.labels
    config = VideoMAEConfig(
        num_frames=motion.num_frames,
        tubelet_size=TUBELET,
        image_size=motion.canvas,
        patch_size=PATCH,
        num_channels=1,
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=128,
        use_mean_pooling=True,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    return VideoMAEForVideoClassification(config)


def training_args(output_dir: str, epochs: int, seed: int, logging_steps: int = 50, report_to: str = "none"):
    return cpu_training_args(
        output_dir,
        report_to,
        num_train_epochs=epochs,
        per_device_train_batch_size=32,
        learning_rate=2e-3,
        weight_decay=0.05,
        warmup_steps=20,
        lr_scheduler_type="cosine",
        logging_steps=logging_steps,
        seed=seed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train", type=int, default=3000, help="training clips")
    parser.add_argument("--test", type=int, default=1000, help="test clips")
    parser.add_argument("--position-strategy", default="stride", choices=["crop", "stride", "interpolate"])
    add_run_arguments(parser, "outputs/video")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.train, args.test = 1, 128, 64
    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():  # the PIL fallback warning when torchvision is not installed
        warnings.simplefilter("ignore")
        processor = VideoMAEImageProcessor(
            size={"shortest_edge": CANVAS},
            crop_size={"height": CANVAS, "width": CANVAS},
            image_mean=[0.5],
            image_std=[0.5],
        )
    train = clip_features(processor, *make_clips(args.train, "train", args.seed))
    test = clip_features(processor, *make_clips(args.test, "test", args.seed + 1))
    labels = [f["label"] for f in test]

    baseline = new_model(args.seed)
    baseline_trainer = Trainer(
        model=baseline,
        args=training_args(f"{args.output_dir}/baseline", args.epochs, args.seed, 50, args.report_to),
        train_dataset=train,
        data_collator=default_data_collator,
    )
    baseline_seconds = train_and_time(baseline_trainer)

    model = patch_model(new_model(args.seed), ICPCConfig(position_strategy=args.position_strategy, seed=args.seed))
    icpc = model.config.icpc
    trainer = Trainer(
        model=model,
        args=training_args(f"{args.output_dir}/icpc", args.epochs, args.seed, 2 if args.quick else 50, args.report_to),
        train_dataset=train,
        data_collator=ICPCDataCollator(processor, icpc),
        callbacks=[ICPCCallback()],
    )
    trainer.pop_callback(ICPCCallback).attach(trainer)  # ahead of the reporting callbacks (--report-to)
    icpc_seconds = train_and_time(trainer)
    token_ratios = [h["icpc/token_ratio"] for h in trainer.state.log_history if "icpc/token_ratio" in h]

    patch_model(baseline)  # identity at full size: lets the same code evaluate the baseline
    baseline_accuracy = accuracy(run_cascade(baseline, test, processor, levels=[1.0]).predictions, labels)
    icpc_accuracy = accuracy(run_cascade(model, test, processor, levels=[1.0]).predictions, labels)
    training = print_table(
        "Training (same model, data, epochs, seed)",
        [
            {
                "run": "baseline (plain Trainer)",
                "test accuracy": baseline_accuracy,
                "train seconds": baseline_seconds,
                "tokens per clip vs full": 1.0,
            },
            {
                "run": f"ICPC (levels {icpc['levels']}, {args.position_strategy})",
                "test accuracy": icpc_accuracy,
                "train seconds": icpc_seconds,
                "tokens per clip vs full": float(np.mean(token_ratios)) if token_ratios else float("nan"),
            },
        ],
    )
    print(f"training speedup: {baseline_seconds / icpc_seconds:.2f}x")

    cascade = cascade_vs_full(model, test, processor, labels, batch_size=64)
    baseline_cascade = run_cascade(baseline, test, processor)
    inference = print_table(
        "Inference (same test clips, batch 64, median of 3)",
        [
            {
                "model / mode": "ICPC, full clips",
                "accuracy": cascade["full_accuracy"],
                "seconds": cascade["full_seconds"],
                "FLOPs vs full": 1.0,
            },
            {
                "model / mode": f"ICPC, cascade {icpc['cascade_levels']}",
                "accuracy": cascade["cascade_accuracy"],
                "seconds": cascade["cascade_seconds"],
                "FLOPs vs full": cascade["cascade_flops_ratio"],
            },
            {
                "model / mode": "baseline, same cascade",
                "accuracy": accuracy(baseline_cascade.predictions, labels),
                "seconds": float("nan"),
                "FLOPs vs full": baseline_cascade.summary()["flops_ratio"],
            },
        ],
    )
    answered = {k: round(v, 3) for k, v in cascade.items() if k.startswith("answered_at_")}
    print(f"cascade speedup: {cascade['cascade_speedup']:.2f}x; share of clips answered per level: {answered}")

    save_outputs(
        model,
        processor,
        args.output_dir,
        [training, inference],
        {
            "baseline_accuracy": baseline_accuracy,
            "icpc_accuracy": icpc_accuracy,
            "baseline_seconds": baseline_seconds,
            "icpc_seconds": icpc_seconds,
            **cascade,
        },
    )


if __name__ == "__main__":
    main()
