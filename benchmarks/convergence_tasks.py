"""The tasks of benchmarks/convergence.py: small enough that every arm trains to convergence on 2 CPU cores.

Image: Fashion-MNIST items drawn at a random scale (12 to 32 pixels) at a random place on a 32-pixel canvas, so
small items need the full resolution and large ones do not (the property that separates ICPC from simply training
at a lower resolution), with few training images (the data-limited regime of fine-tuning, where a plain Trainer
overfits before its schedule ends).
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, default_data_collator

from convergence import Arm, ConvergenceTask
from run import Task
from tasks import FASHION_LABELS

CANVAS = 32


def grid_arms(levels: list[float], token_ratio: float, add_patch_dropout: Callable | None) -> dict[str, Arm]:
    """The arms every grid task runs: the baseline, ICPC's variants, and the peers at the same levels."""
    smallest = levels[0]
    middle = levels[len(levels) // 2]
    arms = {
        "baseline": Arm(None, eval_levels=[1.0], note="plain Trainer, full size"),
        "icpc constant crop": Arm({"position_strategy": "crop", "schedule": "constant"},
                                  note="every level alike, every epoch"),
        "icpc constant stride": Arm({"position_strategy": "stride", "schedule": "constant"}),
        "icpc progressive crop": Arm({"position_strategy": "crop", "schedule": "progressive"},
                                     note="the smallest level allowed rises over the run"),
        "icpc anchored crop": Arm({"position_strategy": "crop", "schedule": "anchored"},
                                  note="progressive, with the cascade's levels drawn in every epoch"),
        "icpc progressive stride": Arm({"position_strategy": "stride", "schedule": "progressive"},
                                       note="field-of-view positions: a smaller image keeps the full table's spread"),
        "icpc anchored stride": Arm({"position_strategy": "stride", "schedule": "anchored"}),
        "icpc target 2x crop": Arm({"position_strategy": "crop", "target_speedup": 2.0, "schedule": "constant"}),
        f"fixed level {smallest:.3g}": Arm({"levels": [smallest]}, eval_levels=[smallest, 1.0],
                                           note="just downscale: one small size throughout"),
        f"fixed level {middle:.3g}": Arm({"levels": [middle]}, eval_levels=[middle, 1.0]),
        "progressive resizing": Arm({"schedule": "progressive_resizing", "position_strategy": "crop"},
                                    note="one size per epoch, growing; full size for the last fifth (Composer)"),
    }
    if add_patch_dropout is not None:
        arms[f"PatchDropout {token_ratio:.2f}"] = Arm(
            None, prepare=lambda model: add_patch_dropout(model, token_ratio, 0), eval_levels=[1.0],
            note="random patches dropped in training at ICPC's token budget", token_ratio=token_ratio)
    return arms


def default_levels(task: Task) -> tuple[list[float], float]:
    """The levels `ICPCConfig()` resolves for the task's model, and their mean token share (the even draw's)."""
    from icpc_hf import ICPCConfig, patch_model
    from icpc_hf.patching import icpc_settings
    from icpc_hf.registry import REGISTRY

    settings = icpc_settings(patch_model(task.new_model(0), ICPCConfig()))
    costs = REGISTRY[settings.model_type].modality.level_costs(settings)
    return list(settings.levels), float(np.mean(costs))


def grid_task(task: Task, validation: list, test: list, add_patch_dropout: Callable | None = None) -> ConvergenceTask:
    levels, token_ratio = default_levels(task)
    return ConvergenceTask(task, validation, test, levels, grid_arms(levels, token_ratio, add_patch_dropout))


def fashion_features(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, canvas: int,
                     smallest: int | None, seed: int) -> list[dict]:
    """Fashion-MNIST items as features: each at a random side from `smallest` to `canvas` on a blank canvas
    (`scale_varied`), or with `smallest=None` the plain item resized to the canvas; values in [-1, 1]."""
    from _shared import scale_varied

    items = torch.from_numpy(images[indices].astype(np.float32))[:, None] / 255.0
    if smallest is None:
        placed = items if items.shape[-1] == canvas else torch.nn.functional.interpolate(
            items, size=(canvas, canvas), mode="bilinear", antialias=True, align_corners=False)
    else:
        placed = scale_varied(items, canvas, smallest, seed)
    pixels = placed * 2.0 - 1.0  # background -1, as the processor would
    return [{"pixel_values": p, "label": int(y)} for p, y in zip(pixels, labels[indices])]


def small_vit(canvas: int, patch: int, hidden: int, layers: int, channels: int = 1,
              names: list[str] = FASHION_LABELS) -> Callable[[int], ViTForImageClassification]:
    """A factory of same-seed, same-weights ViTs from a small config (no pretrained image weights are offline)."""

    def new_model(seed: int) -> ViTForImageClassification:
        torch.manual_seed(seed)
        return ViTForImageClassification(ViTConfig(
            image_size=canvas, patch_size=patch, num_channels=channels, hidden_size=hidden,
            num_hidden_layers=layers, num_attention_heads=4, intermediate_size=2 * hidden, num_labels=len(names),
            id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
        ))

    return new_model


def fashion_task(name: str, quick: bool, canvas: int, patch: int, smallest: int | None, train_size: int,
                 held_size: int, epochs: int, eval_every: int = 1, hidden: int = 96) -> ConvergenceTask:
    """A ViT trained from scratch on Fashion-MNIST items; the task's record says its grid, data and regime."""
    from _shared import load_fashion_mnist
    from peers import add_patch_dropout

    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    train_idx = rng.permutation(len(train_images))[: 256 if quick else train_size]
    held_idx = rng.permutation(len(test_images))[: 256 if quick else held_size]
    hidden = 48 if quick else hidden
    processor = ViTImageProcessor(size={"height": canvas, "width": canvas}, image_mean=[0.5], image_std=[0.5])
    task = Task(name=name, train=fashion_features(train_images, train_labels, train_idx, canvas, smallest, 1),
                test=[], new_model=small_vit(canvas, patch, hidden, 2 if quick else 4), processor=processor,
                baseline_collator=default_data_collator, epochs=3 if quick else epochs, batch_size=64,
                learning_rate=2e-3)
    held_out = fashion_features(test_images, test_labels, held_idx, canvas, smallest, 2)
    cut = 128 if quick else int(held_size * 0.4)
    spec = grid_task(task, held_out[:cut], held_out[cut:], add_patch_dropout)
    spec.eval_every = 1 if quick else eval_every
    return spec


def image_task(quick: bool) -> ConvergenceTask:
    """Scale-varied items (12 to 32 pixels) on a 32-pixel canvas, patch 4 (8 x 8 grid), 3,000 images, 40 epochs."""
    return fashion_task("image", quick, canvas=CANVAS, patch=4, smallest=12, train_size=3_000, held_size=2_000,
                        epochs=40, eval_every=2)


def image_plain_task(quick: bool) -> ConvergenceTask:
    """Plain items filling a 28-pixel frame, patch 4 (7 x 7 grid), 2,000 images, 30 epochs: data-limited."""
    return fashion_task("image_plain", quick, canvas=28, patch=4, smallest=None, train_size=2_000,
                        held_size=2_000, epochs=30)


def image_coarse_task(quick: bool) -> ConvergenceTask:
    """Scale-varied items (8 to 36 pixels) on a 36-pixel canvas, patch 6 (a coarse 6 x 6 grid), 3,000 images,
    40 epochs: data-limited."""
    return fashion_task("image_coarse", quick, canvas=36, patch=6, smallest=8, train_size=3_000, held_size=2_000,
                        epochs=40, eval_every=2)


def image_fine_task(quick: bool) -> ConvergenceTask:
    """Scale-varied items (10 to 48 pixels) on a 48-pixel canvas, patch 4 (a fine 12 x 12 grid), 2,000 images,
    24 epochs: data-limited, 144 tokens a full-size image."""
    return fashion_task("image_fine", quick, canvas=48, patch=4, smallest=10, train_size=2_000, held_size=1_500,
                        epochs=24, eval_every=2, hidden=64)


def image_undertrained_task(quick: bool) -> ConvergenceTask:
    """Plain 28-pixel items, patch 4 (7 x 7), 8,000 images, 4 epochs: under-trained (the baseline still improves)."""
    return fashion_task("image_undertrained", quick, canvas=28, patch=4, smallest=None, train_size=8_000,
                        held_size=2_000, epochs=4)


PRETRAINED = os.path.join(os.path.expanduser("~"), ".cache", "icpc_hf_benchmarks", "vit-fashion-32.pt")


def pretrained_vit(quick: bool) -> dict:
    """A small ViT pretrained once on 20,000 plain Fashion-MNIST items at 32 pixels (2 epochs, a few minutes on 2
    cores), cached: the stand-in for an ImageNet checkpoint, since no pretrained image weights are offline."""
    from _shared import load_fashion_mnist
    from transformers import Trainer, TrainingArguments

    path = PRETRAINED.replace(".pt", "-quick.pt") if quick else PRETRAINED
    if os.path.exists(path):
        return torch.load(path)
    images, labels = load_fashion_mnist("train")
    indices = np.random.default_rng(5).permutation(len(images))[: 512 if quick else 20_000]
    model = small_vit(CANVAS, 4, 48 if quick else 96, 2 if quick else 4)(0)
    args = TrainingArguments(output_dir=os.path.join(os.path.dirname(path), "pretraining"), num_train_epochs=2,
                             per_device_train_batch_size=128, learning_rate=2e-3, warmup_steps=50,
                             lr_scheduler_type="cosine", weight_decay=0.05, save_strategy="no", report_to=[],
                             use_cpu=True, disable_tqdm=True, remove_unused_columns=False, logging_steps=10_000)
    Trainer(model=model, args=args, train_dataset=fashion_features(images, labels, indices, CANVAS, None, 5),
            data_collator=default_data_collator).train()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    return state


def image_finetune_task(quick: bool) -> ConvergenceTask:
    """The paper's own regime: a pretrained ViT fine-tuned on a few hundred low-resolution images upsampled to its
    size (scikit-learn's 8 x 8 digits, bilinear to 32 pixels), to convergence."""
    from sklearn.datasets import load_digits
    from peers import add_patch_dropout

    weights = pretrained_vit(quick)
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    upsampled = torch.nn.functional.interpolate(images, size=(CANVAS, CANVAS), mode="bilinear", align_corners=False)
    pixels = upsampled * 2.0 - 1.0
    order = np.random.default_rng(0).permutation(len(pixels))
    data = [{"pixel_values": pixels[i], "label": int(digits.target[i])} for i in order]
    train, held_out = data[: 128 if quick else 400], data[400: 400 + (256 if quick else 1_000)]
    names = [str(d) for d in range(10)]
    fresh = small_vit(CANVAS, 4, 48 if quick else 96, 2 if quick else 4, names=names)

    def new_model(seed: int) -> ViTForImageClassification:
        model = fresh(seed)  # the classifier head is new, initialised from the seed
        model.load_state_dict(weights, strict=False)
        return model

    processor = ViTImageProcessor(size={"height": CANVAS, "width": CANVAS}, image_mean=[0.5], image_std=[0.5])
    task = Task(name="image_finetune", train=train, test=[], new_model=new_model, processor=processor,
                baseline_collator=default_data_collator, epochs=3 if quick else 20, batch_size=32,
                learning_rate=5e-4)
    cut = 128 if quick else 400
    return grid_task(task, held_out[:cut], held_out[cut:], add_patch_dropout)
