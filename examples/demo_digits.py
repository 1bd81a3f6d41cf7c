"""The main demo: a small ViT on scikit-learn's digits (embedded, no download), with and without ICPC.

The digits are drawn at random sizes (12 to 32 pixels) on a 32-pixel canvas, so that some need the full resolution
and most do not; `--fixed-scale` makes every digit fill the canvas instead. The same model is trained twice from
the same weights, with the same optimiser, batch size and epochs: a plain Trainer on full-resolution images, and
ICPC with its defaults (`ICPCConfig()`, and the two lines of a Trainer script: `data_collator=ICPCDataCollator(...)`,
`callbacks=[ICPCCallback()]`). After every epoch the clock stops and both are evaluated, so the demo shows accuracy
against training time: does ICPC reach the plain Trainer's best accuracy sooner? At the end of training
ICPCCallback calibrates the cascade on the validation split; the demo then times the served model against
full-resolution inference, draws the curves to a PNG and writes a Hub-ready folder.

    python examples/demo_digits.py [--epochs 40] [--fixed-scale] [--output-dir outputs/demo]
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
    PrinterCallback,
    Trainer,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessorPil,
    default_data_collator,
    set_seed,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import (  # noqa: E402
    AccuracyOverTime,
    cascade_vs_full,
    cpu_training_args,
    print_table,
    save_outputs,
    scale_varied,
)

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, icpc_settings, patch_model  # noqa: E402

IMAGE_SIZE = 32


def digits_features(seed: int, fixed_scale: bool = False) -> tuple[list[dict], list[dict], list[dict]]:
    """Digits on a 32 x 32 canvas, normalised as an image processor would; train / validation / test = 68 / 12 / 20 %.

    By default each digit is drawn at a random side from 12 to 32 pixels at a random place, so small digits need the
    full resolution and large ones do not; `fixed_scale` upsamples every digit to fill the canvas instead (then a
    lower resolution loses nothing, and plainly training smaller is the thing to do)."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    if fixed_scale:
        images = torch.nn.functional.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear")
    else:
        images = scale_varied(images, IMAGE_SIZE, 12, seed)
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
        image_size=IMAGE_SIZE,
        patch_size=4,
        num_channels=1,
        hidden_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=192,
        num_labels=10,
        id2label={i: str(i) for i in range(10)},
        label2id={str(i): i for i in range(10)},
    )
    return ViTForImageClassification(config)


def training_args(output_dir: str, epochs: int, seed: int, report_to: str = "none"):
    logging = {"logging_strategy": "no"} if report_to == "none" else {"report_to": report_to, "logging_steps": 10}
    return cpu_training_args(
        output_dir,
        num_train_epochs=epochs,
        per_device_train_batch_size=64,
        learning_rate=2e-3,
        weight_decay=0.05,
        warmup_steps=20,
        lr_scheduler_type="cosine",
        seed=seed,
        **logging,
    )


def plot_curves(curves: dict[str, list[dict]], path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.6))
    for (name, curve), color in zip(curves.items(), ("black", "C1")):
        seconds = [p["train_seconds"] for p in curve]
        axes.plot(seconds, [p["served_accuracy"] for p in curve], "o-", ms=3, color=color, label=f"{name}, as served")
        if name != "baseline":
            axes.plot(seconds, [p["test"]["1"] for p in curve], ":", color=color, label=f"{name}, at full size")
    axes.set_xlabel("training seconds (evaluation excluded)")
    axes.set_ylabel("test accuracy")
    axes.set_ylim(0.0, 1.0)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def verdict_line(
    best: float, base_hit: dict, icpc_hit: dict | None, icpc_best: float, epochs: int, cascade: dict
) -> str:
    """The demo's answer in one line: did ICPC reach the plain Trainer's best accuracy sooner, and how it serves."""
    serving = f"serves at {cascade['cascade_speedup']:.2f}x the speed of full size"
    if icpc_hit is None:
        return (
            f"Verdict: ICPC did NOT reach the plain Trainer's best accuracy ({best:.4f}) in {epochs} epochs (its "
            f"best: {icpc_best:.4f}); it {serving}."
        )
    return (
        f"Verdict: ICPC reached the plain Trainer's best accuracy ({best:.4f}) "
        f"{base_hit['train_seconds'] / icpc_hit['train_seconds']:.2f}x sooner ({icpc_hit['train_seconds']:.1f} s "
        f"against {base_hit['train_seconds']:.1f} s of training) and {serving}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fixed-scale",
        action="store_true",
        help="every digit fills the canvas (the regime where ICPC does not pay; see docs/results/demo.md)",
    )
    parser.add_argument("--output-dir", default="outputs/demo")
    parser.add_argument(
        "--report-to",
        default="none",
        help="e.g. tensorboard (pip install tensorboard): the Trainer's logs with the icpc/ figures, "
        "under OUTPUT_DIR/icpc/runs",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads; on a busy CPU, 1 is steadier than more threads than free cores",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.output_dir, exist_ok=True)
    train, validation, test = digits_features(args.seed, args.fixed_scale)
    labels = [f["label"] for f in test]
    # The PIL backend by name: `ViTImageProcessor` picks the torchvision backend and, without torchvision, warns
    # before falling back to this same class.
    processor = ViTImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_mean=[0.5], image_std=[0.5], do_rescale=True
    )

    baseline = new_model(args.seed)
    baseline_curve = AccuracyOverTime(validation, test, processor, [1.0], name="plain Trainer")
    baseline_trainer = Trainer(
        model=baseline,
        args=training_args(f"{args.output_dir}/baseline", args.epochs, args.seed, args.report_to),
        train_dataset=train,
        data_collator=default_data_collator,
        callbacks=[baseline_curve],
    )
    baseline_trainer.remove_callback(PrinterCallback)
    baseline_trainer.train()

    # ICPC: the model patched with the defaults, the collator and the callback; nothing else changes.
    model = patch_model(new_model(args.seed), ICPCConfig(seed=args.seed))
    icpc_callback = ICPCCallback()
    icpc_curve = AccuracyOverTime(validation, test, processor, icpc_settings(model).levels, name="ICPC")
    trainer = Trainer(
        model=model,
        args=training_args(f"{args.output_dir}/icpc", args.epochs, args.seed, args.report_to),
        train_dataset=train,
        eval_dataset=validation,
        data_collator=ICPCDataCollator(processor, model.config.icpc),
        callbacks=[icpc_callback, icpc_curve],
    )
    trainer.remove_callback(PrinterCallback)
    icpc_callback.attach(trainer)  # first in line, so reporters see icpc/ figures; calibrates on eval_dataset
    trainer.train()

    best = max(p["served_accuracy"] for p in baseline_curve.curve)
    base_hit, icpc_hit = baseline_curve.first_reaching(best), icpc_curve.first_reaching(best)
    cascade = cascade_vs_full(model, test, processor, labels, batch_size=64)
    served = model.config.icpc
    rows = [
        {
            "run": "plain Trainer",
            "train seconds": baseline_curve.curve[-1]["train_seconds"],
            "best test accuracy": best,
            "seconds to that accuracy": base_hit["train_seconds"],
            "final accuracy as served": baseline_curve.curve[-1]["served_accuracy"],
            "served speed vs full size": 1.0,
        },
        {
            "run": "ICPC, ICPCConfig()",
            "train seconds": icpc_curve.curve[-1]["train_seconds"],
            "best test accuracy": max(p["served_accuracy"] for p in icpc_curve.curve),
            "seconds to that accuracy": icpc_hit["train_seconds"] if icpc_hit else "never",
            "final accuracy as served": cascade["cascade_accuracy"],
            "served speed vs full size": cascade["cascade_speedup"],
        },
    ]
    table = print_table(
        f"Same model, data, optimiser and {args.epochs} epochs (accuracy on {len(test)} test digits)", rows
    )
    serving = (
        f"Served by the cascade the callback calibrated on validation (levels "
        f"{[round(x, 3) for x in served['cascade_levels']]}, thresholds {served['thresholds']}), ICPC's model "
        f"answers at {cascade['cascade_speedup']:.2f}x the speed of full-size inference with accuracy "
        f"{cascade['cascade_accuracy']:.4f} ({cascade['full_accuracy']:.4f} at full size)."
    )
    print(serving)
    verdict = verdict_line(best, base_hit, icpc_hit, rows[1]["best test accuracy"], args.epochs, cascade)
    save_outputs(
        model,
        processor,
        args.output_dir,
        [table, serving, verdict],
        {
            "baseline_curve": baseline_curve.curve,
            "icpc_curve": icpc_curve.curve,
            **cascade,
            "baseline_best": best,
            "served_cascade": {k: served[k] for k in ("cascade_levels", "thresholds")},
        },
        callback=icpc_callback,
    )
    figure = plot_curves(
        {"baseline": baseline_curve.curve, "ICPC": icpc_curve.curve},
        os.path.join(args.output_dir, "accuracy_vs_time.png"),
    )
    print(f"accuracy against training time: {figure}")
    print(verdict)


if __name__ == "__main__":
    main()
