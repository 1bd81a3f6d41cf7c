"""The main demo: a small ViT on scikit-learn's digits (embedded, no download), with and without ICPC.

Trains the same model twice with the same settings (plain Trainer on full-resolution images; ICPC through
ICPCDataCollator + ICPCCallback), prints accuracy and training time of each, then the cascade against
full-resolution inference, and writes a Hub-ready folder served by `pipeline(model=folder, trust_remote_code=True)`.

    python examples/demo_digits.py [--epochs 15] [--position-strategy stride] [--output-dir outputs/demo]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from transformers import (
    Trainer,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
    default_data_collator,
    set_seed,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import accuracy, cascade_vs_full, cpu_training_args, print_table, save_outputs, train_timed  # noqa: E402

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model, run_cascade  # noqa: E402
from icpc_hf.calibrate import calibrate_thresholds  # noqa: E402

IMAGE_SIZE = 32


def digits_features(seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Digits upsampled from 8x8 to 32x32, normalised as an image processor would; train / validation / test
    = 68 / 12 / 20 %."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    images = torch.nn.functional.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear")
    images = (images - 0.5) / 0.5
    train_idx, test_idx = train_test_split(
        np.arange(len(images)), test_size=0.2, random_state=seed, stratify=digits.target
    )
    train_idx, val_idx = train_test_split(
        train_idx, test_size=0.15, random_state=seed, stratify=digits.target[train_idx]
    )
    def features(indices):
        return [{"pixel_values": images[i], "label": int(digits.target[i])} for i in indices]
    return features(train_idx), features(val_idx), features(test_idx)


def new_model(seed: int) -> ViTForImageClassification:
    set_seed(seed)
    config = ViTConfig(
        image_size=IMAGE_SIZE, patch_size=4, num_channels=1, hidden_size=64, num_hidden_layers=4,
        num_attention_heads=4, intermediate_size=128, num_labels=10,
        id2label={i: str(i) for i in range(10)}, label2id={str(i): i for i in range(10)},
    )
    return ViTForImageClassification(config)


def training_args(output_dir: str, epochs: int, seed: int):
    return cpu_training_args(
        output_dir, num_train_epochs=epochs, per_device_train_batch_size=32, learning_rate=1e-3, weight_decay=0.05,
        warmup_steps=50, lr_scheduler_type="cosine", logging_steps=50, seed=seed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--position-strategy", default="stride", choices=["crop", "stride", "interpolate"])
    parser.add_argument("--levels", type=float, nargs="+", default=[0.5, 0.625, 0.75, 0.875, 1.0])
    parser.add_argument("--uncompressed-last-epochs", type=int, default=1)
    parser.add_argument("--output-dir", default="outputs/demo")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads; on a busy CPU, 1 is steadier than more threads than free cores")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, validation, test = digits_features(args.seed)
    labels = [f["label"] for f in test]
    processor = ViTImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_mean=[0.5], image_std=[0.5], do_rescale=True
    )

    baseline = new_model(args.seed)
    baseline_trainer = Trainer(
        model=baseline, args=training_args(f"{args.output_dir}/baseline", args.epochs, args.seed),
        train_dataset=train, data_collator=default_data_collator,
    )
    baseline_seconds, baseline_cpu = train_timed(baseline_trainer)

    model = new_model(args.seed)
    icpc = ICPCConfig(
        levels=args.levels, position_strategy=args.position_strategy,
        uncompressed_last_epochs=args.uncompressed_last_epochs, seed=args.seed,
    )
    model = patch_model(model, icpc)
    trainer = Trainer(
        model=model, args=training_args(f"{args.output_dir}/icpc", args.epochs, args.seed), train_dataset=train,
        data_collator=ICPCDataCollator(processor, icpc), callbacks=[ICPCCallback()],
    )
    icpc_seconds, icpc_cpu = train_timed(trainer)
    token_ratios = [h["icpc/token_ratio"] for h in trainer.state.log_history if "icpc/token_ratio" in h]

    patch_model(baseline)  # lets the baseline be evaluated by the same code, at full resolution only
    baseline_accuracy = accuracy(run_cascade(baseline, test, processor, levels=[1.0]).predictions, labels)
    icpc_accuracy = accuracy(run_cascade(model, test, processor, levels=[1.0]).predictions, labels)
    training = print_table("Training (same model, data, epochs, seed)", [
        {"run": "baseline (plain Trainer)", "test accuracy": baseline_accuracy, "train seconds": baseline_seconds,
         "train CPU seconds": baseline_cpu, "tokens per sample vs full": 1.0},
        {"run": f"ICPC ({args.position_strategy})", "test accuracy": icpc_accuracy, "train seconds": icpc_seconds,
         "train CPU seconds": icpc_cpu,
         "tokens per sample vs full": float(np.mean(token_ratios)) if token_ratios else float("nan")},
    ])
    print(f"training speedup: {baseline_seconds / icpc_seconds:.2f}x wall, {baseline_cpu / icpc_cpu:.2f}x CPU time")

    # Thresholds chosen on the validation split: the cheapest cascade within 1 point of full-size accuracy.
    calibration = calibrate_thresholds(model, validation, processor, [f["label"] for f in validation],
                                       max_accuracy_loss=0.01)
    calibration.apply(model)
    print(f"cascade chosen on validation: levels {calibration.chosen.levels}, thresholds {calibration.chosen.thresholds}")

    cascade = cascade_vs_full(model, test, processor, labels, batch_size=64)
    inference = print_table("Inference of the ICPC model (same test set, batch 64, median of 3)", [
        {"mode": "full resolution", "accuracy": cascade["full_accuracy"], "seconds": cascade["full_seconds"],
         "est. FLOPs vs full": 1.0},
        {"mode": f"cascade {[round(x, 3) for x in model.config.icpc['cascade_levels']]}",
         "accuracy": cascade["cascade_accuracy"], "seconds": cascade["cascade_seconds"],
         "est. FLOPs vs full": cascade["cascade_flops_ratio"]},
    ])
    print(f"cascade speedup: {cascade['cascade_speedup']:.2f}x, estimated FLOPs ratio "
          f"{cascade['cascade_flops_ratio']:.2f}")

    save_outputs(model, processor, args.output_dir, [training, inference],
                 {"baseline_accuracy": baseline_accuracy, "icpc_accuracy": icpc_accuracy,
                  "baseline_seconds": baseline_seconds, "icpc_seconds": icpc_seconds, **cascade})


if __name__ == "__main__":
    main()
