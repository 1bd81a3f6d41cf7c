"""Level compensation after training: each compressed level learns to answer as the trained model does at full size.

The schedule that reaches the best accuracy soonest ends on large levels, and the small levels a cascade answers
with first are forgotten by then; keeping them alive during training gives the training gain back. So they are
mended afterwards, apart: the backbone is frozen, each level below full size gets its own small parameters in the
embeddings (icpc_hf/compensation.py: a projection and position rows, zero at the start), and those learn to match the
full-size model's class distribution on the training inputs (self-distillation, as FlexiViT, ToCom and MSPE do).
Full size never uses them, so its answers stay bit-identical; the cost is the small levels' passes only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import compensation
from ..modality import GridModality
from ..patching import base_model_of, icpc_settings, patch_model
from ..registry import registration_for
from .distill import divergence

logger = logging.getLogger(__name__)


@dataclass
class CompensationReport:
    """What a compensation phase did: for `levels.json`, the logs and the model card."""

    levels: list[float]
    seconds: float
    steps: int
    parts: list[str]
    divergence_before: dict[str, float] = field(default_factory=dict)
    """Per level: mean KL(full size || level) over the first epoch's batches, before each step."""
    divergence_after: dict[str, float] = field(default_factory=dict)
    """Per level: the same over the last epoch."""


def compensable(model: nn.Module) -> str | None:
    """Why this model's levels cannot be compensated, or None when they can."""
    icpc = icpc_settings(model)
    modality = registration_for(icpc.model_type).modality
    if not isinstance(modality, GridModality):
        return (
            f"{modality.name} levels are pruned in the collator into sequences the model cannot tell apart by level, "
            "so no parameter can be kept for one level"
        )
    if any(type(p).__name__ == "DTensor" for p in model.parameters()):
        return "the model is sharded (FSDP); compensate the gathered model after training"
    config = base_model_of(model).config
    if getattr(config, "problem_type", None) not in (None, "single_label_classification"):
        return f"its problem type is {config.problem_type!r}; compensation matches class distributions"
    return None


def _batches(count: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    order = torch.randperm(count, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


def compensate_levels(
    model: nn.Module,
    features: Sequence[dict[str, Any]],
    processor: Any,
    levels: Sequence[float] | None = None,
    parts: Sequence[str] = compensation.PARTS,
    epochs: int = 2,
    batch_size: int = 64,
    learning_rate: float = 1e-2,
    seed: int = 0,
) -> CompensationReport:
    """Train per-level compensation parameters of a patched grid model on `features` (the training inputs, as the
    collator takes them), so that each of `levels` (default: every training and cascade level below full size)
    answers as the model does at full size. `learning_rate` is relative to the size (RMS) of the embeddings: a step
    moves them by about that share of it (warm-up, then a cosine to zero). The backbone is frozen; the model is re-patched with the settings
    recording which levels have parameters (`config.icpc["level_compensation"]`), so they are saved with it."""
    reason = compensable(model)
    if reason is not None:
        raise ValueError(f"Cannot compensate this model's levels: {reason}.")
    if features is None or not hasattr(features, "__len__") or len(features) == 0:
        raise ValueError(
            "Level compensation learns from the training inputs and got none: pass the training dataset (map-style, "
            "with a length) as `features`, or turn compensation off (`ICPCCallback(compensate=False)`)."
        )
    unknown = sorted(set(parts) - set(compensation.PARTS))
    if unknown or not parts:
        raise ValueError(f"Unknown compensation parts {unknown or list(parts)}: choose among {compensation.PARTS}.")
    if not (isinstance(epochs, int) and epochs >= 1 and isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"`epochs` and `batch_size` must be positive integers, got {epochs!r} and {batch_size!r}.")
    icpc = icpc_settings(model)
    modality = registration_for(icpc.model_type).modality
    if levels is None:
        levels = [*icpc.levels, *(icpc.cascade_levels or [])]
    levels = sorted({float(lv) for lv in levels if float(lv) < 1.0})
    if not levels:
        raise ValueError("There is no level below full size to compensate: give `levels` such as [0.5, 0.75].")
    base = base_model_of(model)
    device = next(model.parameters()).device
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    modules = [m for m in base.modules() if hasattr(m, "icpc_full_grid")]
    teacher, scale = [], []
    # the size of the embeddings sets the step: a step of `learning_rate` moves them by that share of their size
    hooks = [
        m.register_forward_hook(lambda m, a, out: scale.append(out.detach().float().pow(2).mean())) for m in modules
    ]
    with torch.inference_mode():  # the teacher: the trained model at full size, once per training input
        for first in range(0, len(features), batch_size):
            chunk = [features[i] for i in range(first, min(first + batch_size, len(features)))]
            teacher.append(model(**_model_inputs(modality.collate(processor, chunk, 1.0, icpc), device)).logits.float())
    for hook in hooks:
        hook.remove()
    teacher = torch.cat(teacher).cpu()
    step_size = learning_rate * float(torch.stack(scale).mean().sqrt())
    grids = [list(modality.grid(level, icpc)) for level in levels]
    record = {"levels": levels, "grids": grids, "parts": list(parts), "dim": int(base.config.hidden_size)}
    for module in modules:
        compensation.install(module, grids, icpc.geometry.get("special_tokens", 0), record["dim"], parts)
    named = [item for m in modules for item in m._modules[compensation.ATTRIBUTE].named_parameters()]
    trained = [p for _, p in named]
    frozen = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trained:
        p.requires_grad_(True)
    relative = [p for n, p in named if n.endswith("mix")]  # the projection: a share, at any width
    absolute = [p for n, p in named if not n.endswith("mix")]  # in the embeddings' own units
    optimizer = torch.optim.AdamW(
        [{"params": relative, "lr": learning_rate}, {"params": absolute, "lr": step_size}], weight_decay=0.0
    )
    total = epochs * math.ceil(len(features) / batch_size)
    warmup = max(1, total // 10)  # Adam's first steps are as large as any: rise to the rate, then a cosine to zero
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            (step + 1) / warmup
            if step < warmup
            else 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
        ),
    )
    generator = torch.Generator().manual_seed(seed)
    report = CompensationReport(levels, 0.0, 0, list(parts))
    try:
        for epoch in range(epochs):
            sums = dict.fromkeys(levels, 0.0)
            batches = _batches(len(features), batch_size, generator)
            for chunk in batches:
                chunk_features = [features[i] for i in chunk]
                targets = teacher[chunk].to(device)
                optimizer.zero_grad(set_to_none=True)
                for level in levels:
                    batch = _model_inputs(modality.collate(processor, chunk_features, level, icpc), device)
                    loss = divergence(model(**batch).logits, targets)
                    loss.backward()
                    sums[level] += float(loss.detach())
                optimizer.step()
                schedule.step()
                report.steps += 1
            means = {f"{lv:g}": sums[lv] / len(batches) for lv in levels}
            if epoch == 0:
                report.divergence_before = means
            report.divergence_after = means
    finally:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
        model.train(was_training)
    settings = icpc.to_dict()
    settings["level_compensation"] = record
    patch_model(model, type(icpc).from_dict(settings))
    report.seconds = time.perf_counter() - start
    logger.info(
        "ICPC level compensation: levels %s in %.1f s (%d steps); mean divergence from full size %s -> %s.",
        [f"{lv:g}" for lv in levels],
        report.seconds,
        report.steps,
        _rounded(report.divergence_before),
        _rounded(report.divergence_after),
    )
    return report


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) if math.isfinite(v) else v for k, v in values.items()}


def _model_inputs(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    batch.pop("labels", None)
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


COMPENSATION_KEYS = ("levels", "parts", "epochs", "batch_size", "learning_rate", "seed")


def train_features(trainer: Any) -> Any:
    """The training samples as the data collator takes them (the Trainer's column filtering applied), or None when
    they cannot be read by index (no Trainer, no train_dataset, or a stream)."""
    if trainer is None or trainer.train_dataset is None:
        return None
    features = trainer.get_train_dataloader().dataset
    return features if hasattr(features, "__len__") and hasattr(features, "__getitem__") else None


class LevelCompensation:
    """The end-of-training step of ICPCCallback that compensates the levels (`compensate_levels`) before the cascade
    is calibrated, so calibration and the shipped cascade see the mended levels."""

    def __init__(self, compensate: bool | dict[str, Any] = True) -> None:
        if compensate is True:
            compensate = {}
        if compensate is not False and not isinstance(compensate, dict):
            raise ValueError(f"`compensate` takes True, False or a dict of {COMPENSATION_KEYS}, got {compensate!r}.")
        unknown = sorted(set(compensate or {}) - set(COMPENSATION_KEYS))
        if unknown:
            raise ValueError(f"Unknown compensation setting(s) {unknown}: use {', '.join(COMPENSATION_KEYS)}.")
        self.settings = None if compensate is False else dict(compensate)
        self.report: CompensationReport | None = None
        self.skipped: str | None = None
        """Why the last run compensated nothing (None: it did, or it is off)."""

    def run(self, model: nn.Module, trainer: Any, processor: Any, seed: int = 0) -> dict[str, Any] | None:
        """Compensate `model`'s levels on the trainer's training set; the `icpc/` figures to log, or None."""
        self.report = self.skipped = None
        if self.settings is None or model is None:
            return None
        self.skipped = compensable(model)
        features = train_features(trainer)
        if self.skipped is None and features is None:
            self.skipped = "the training set cannot be read by index (a stream, or no Trainer)"
        if self.skipped is None and processor is None and not _processed(features):
            self.skipped = "no processor was found to prepare the raw training inputs"
        if self.skipped is not None:
            logger.info("ICPC level compensation skipped: %s.", self.skipped)
            return None
        self.report = compensate_levels(model, features, processor, **{"seed": seed, **self.settings})
        return {
            "icpc/compensation_seconds": self.report.seconds,
            "icpc/compensated_levels": ", ".join(f"{lv:g}" for lv in self.report.levels),
        }


def _processed(features: Any) -> bool:
    sample = features[0] if len(features) else {}
    return isinstance(sample, dict) and any(k in sample for k in ("pixel_values", "input_values"))
