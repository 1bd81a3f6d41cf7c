"""The tasks of benchmarks/convergence.py: small enough that every arm trains to convergence on 2 CPU cores.

Image: Fashion-MNIST items drawn at a random scale (12 to 32 pixels) at a random place on a 32-pixel canvas, so
small items need the full resolution and large ones do not (the property that separates ICPC from simply training
at a lower resolution), with few training images (the data-limited regime of fine-tuning, where a plain Trainer
overfits before its schedule ends).
"""

from __future__ import annotations

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


def image_task(quick: bool) -> ConvergenceTask:
    from _shared import load_fashion_mnist, scale_varied
    from peers import add_patch_dropout

    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    train_idx = rng.permutation(len(train_images))[: 256 if quick else 3_000]
    held_idx = rng.permutation(len(test_images))[: 256 if quick else 2_000]

    def features(images, labels, indices, seed):
        items = torch.from_numpy(images[indices].astype(np.float32))[:, None] / 255.0
        pixels = scale_varied(items, CANVAS, 12, seed) * 2.0 - 1.0  # background -1, as the processor would
        return [{"pixel_values": p, "label": int(y)} for p, y in zip(pixels, labels[indices])]

    hidden = 48 if quick else 96

    def new_model(seed: int) -> ViTForImageClassification:
        torch.manual_seed(seed)
        config = ViTConfig(
            image_size=CANVAS, patch_size=4, num_channels=1, hidden_size=hidden, num_hidden_layers=2 if quick else 4,
            num_attention_heads=4, intermediate_size=2 * hidden, num_labels=10,
            id2label=dict(enumerate(FASHION_LABELS)), label2id={n: i for i, n in enumerate(FASHION_LABELS)},
        )
        return ViTForImageClassification(config)

    processor = ViTImageProcessor(size={"height": CANVAS, "width": CANVAS}, image_mean=[0.5], image_std=[0.5])
    task = Task(name="image", train=features(train_images, train_labels, train_idx, 1),
                test=[], new_model=new_model, processor=processor, baseline_collator=default_data_collator,
                epochs=3 if quick else 40, batch_size=64, learning_rate=2e-3)
    held_out = features(test_images, test_labels, held_idx, 2)
    cut = 128 if quick else 800
    spec = grid_task(task, held_out[:cut], held_out[cut:], add_patch_dropout)
    spec.eval_every = 1 if quick else 2
    return spec


def audio_task(quick: bool) -> ConvergenceTask:
    """AST from a small config on espeak-ng spoken digits, split by voice (benchmarks/tasks.py), to convergence."""
    import tasks

    task = tasks.audio_task(quick)
    task.epochs = 2 if quick else 30
    task.icpc = {}
    return grid_task(task, task.validation, task.test)


def video_task(quick: bool) -> ConvergenceTask:
    """VideoMAE from a small config on moving Fashion-MNIST items (benchmarks/tasks.py), fewer clips, to
    convergence."""
    import tasks

    task = tasks.video_task(quick)
    if not quick:
        task.train = task.train[:1000]
        task.epochs = 30
    task.icpc = {}
    return grid_task(task, task.validation, task.test)


def text_task(quick: bool) -> ConvergenceTask:
    """Pretrained MiniLM fine-tuned on fortune topics (benchmarks/tasks.py) with the default pruning vocabulary;
    the baseline groups batches by length, as the ICPC arms do."""
    import tasks

    from icpc_hf import ICPCConfig, patch_model
    from icpc_hf.patching import icpc_settings

    task = tasks.text_task(quick)
    task.epochs = 2 if quick else 16
    task.icpc = {}
    levels = list(icpc_settings(patch_model(task.new_model(0), ICPCConfig())).levels)
    arms = {
        "baseline": Arm(None, eval_levels=[1.0], note="plain Trainer, full texts, batches grouped by length"),
        "icpc progressive": Arm({}, note="`ICPCConfig()`: insignificant words pruned, fewer as the run goes on"),
        "icpc constant": Arm({"schedule": "constant"}, note="every level alike, every epoch"),
    }
    return ConvergenceTask(task, task.validation, task.test, levels, arms)
