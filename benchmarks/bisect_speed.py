"""Per-epoch speed and accuracy of one scale-varied image task, runnable against any checkout of icpc_hf.

    python benchmarks/bisect_speed.py --arm icpc --epochs 6 --output out.json
    PYTHONPATH=/path/to/old/src python benchmarks/bisect_speed.py --arm icpc ...   # another commit's icpc_hf

Issue 25 asked what lost ICPC's per-epoch speed (1.50x -> 1.19x) and its augmentation gain between two dates on a
scale-varied task. This script uses only the API that every version since the schedules has (`patch_model`,
`ICPCConfig(levels=..., position_strategy=..., schedule=...)`, `ICPCDataCollator`, `ICPCCallback`), so the same
file measures any commit: Fashion-MNIST items at random scales (8 to 36 pixels) on a 36-pixel canvas, a ViT with
6-pixel patches (a coarse 6x6 grid), 3,000 training images, batch 64, evaluated at full size after every epoch
with the clock stopped. It writes one JSON per run: every epoch's seconds and accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, ViTConfig, ViTForImageClassification, set_seed

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

from _shared import load_fashion_mnist, scale_varied  # noqa: E402

CANVAS, PATCH = 36, 6


def features(split: str, count: int, seed: int) -> list[dict]:
    images, labels = load_fashion_mnist(split)
    chosen = np.random.default_rng(seed).permutation(len(images))[:count]
    items = torch.from_numpy(images[chosen].astype(np.float32))[:, None] / 255.0
    pixels = scale_varied(items, CANVAS, 8, seed) * 2.0 - 1.0
    return [{"pixel_values": p, "label": int(y)} for p, y in zip(pixels, labels[chosen])]


def new_model(seed: int) -> ViTForImageClassification:
    torch.manual_seed(seed)
    return ViTForImageClassification(
        ViTConfig(
            image_size=CANVAS,
            patch_size=PATCH,
            num_channels=1,
            hidden_size=96,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=192,
            num_labels=10,
        )
    )


class EpochClock(TrainerCallback):
    """Training seconds of every epoch, and full-size test accuracy after it (not timed)."""

    def __init__(self, test: list[dict]):
        self.test, self.epochs, self._start = test, [], 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        seconds = time.perf_counter() - self._start
        was_training = model.training
        model.eval()
        correct = 0
        with torch.inference_mode():
            for i in range(0, len(self.test), 256):
                chunk = self.test[i : i + 256]
                logits = model(pixel_values=torch.stack([f["pixel_values"] for f in chunk])).logits
                correct += int((logits.argmax(-1) == torch.tensor([f["label"] for f in chunk])).sum())
        model.train(was_training)
        self.epochs.append({"seconds": seconds, "accuracy": correct / len(self.test)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=["baseline", "icpc"], required=True)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--schedule", default="constant")
    parser.add_argument("--strategy", default="crop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    import icpc_hf
    from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model

    set_seed(args.seed)
    train, test = features("train", 3000, 1), features("test", 1000, 2)
    model = new_model(args.seed)
    clock = EpochClock(test)
    callbacks = [clock]
    if args.arm == "icpc":
        icpc = ICPCConfig(position_strategy=args.strategy, schedule=args.schedule, seed=args.seed)
        model = patch_model(model, icpc)
        collator = ICPCDataCollator(None, icpc)
        callbacks.append(ICPCCallback(calibrate=False, publish=False))
    else:
        from transformers import default_data_collator as collator
    training = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=64,
        learning_rate=2e-3,
        weight_decay=0.05,
        warmup_steps=20,
        lr_scheduler_type="cosine",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=args.seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
        logging_steps=10_000,
    )
    Trainer(model=model, args=training, train_dataset=train, data_collator=collator, callbacks=callbacks).train()
    result = {
        "arm": args.arm,
        "icpc_hf": os.path.dirname(icpc_hf.__file__),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "schedule": args.schedule,
        "strategy": args.strategy,
        "levels": list(model.config.icpc["levels"]) if args.arm == "icpc" else None,
        "epochs": clock.epochs,
    }
    with open(args.output, "w") as handle:
        json.dump(result, handle, indent=1)
    seconds = [e["seconds"] for e in clock.epochs]
    print(
        f"{args.arm} {result['icpc_hf']}: median epoch {np.median(seconds):.2f} s, "
        f"best accuracy {max(e['accuracy'] for e in clock.epochs):.4f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
