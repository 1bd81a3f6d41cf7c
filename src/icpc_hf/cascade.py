"""Cascaded inference: the most compressed input first, less compressed only for samples still unsure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from .config import ICPCConfig
from .costs import encoder_flops
from .patching import base_model_of, icpc_settings
from .registry import REGISTRY


@dataclass
class CascadeResult:
    """Per sample: the answer, the level that gave it, and the compute spent on the way."""

    probabilities: torch.Tensor
    """Class probabilities from the level that answered, (samples, classes)."""
    levels: list[float]
    """The cascade's levels, cheapest first."""
    answered_step: torch.Tensor
    """Index into `levels` of the level that answered each sample."""
    tokens: torch.Tensor
    """Tokens of the pass that answered."""
    spent_tokens: torch.Tensor
    """Tokens of every pass a sample went through."""
    spent_flops: torch.Tensor
    full_flops: torch.Tensor
    """Estimated FLOPs of one uncompressed pass, the baseline the cascade saves against."""

    @property
    def predictions(self) -> torch.Tensor:
        return self.probabilities.argmax(-1)

    @property
    def answered_level(self) -> list[float]:
        return [self.levels[i] for i in self.answered_step.tolist()]

    def accuracy(self, labels: Sequence[int] | torch.Tensor) -> float:
        labels = torch.as_tensor(labels)
        return float((self.predictions == labels).float().mean())

    def summary(self) -> dict[str, float]:
        counts = torch.bincount(self.answered_step, minlength=len(self.levels))
        stats = {
            "mean_tokens_spent": float(self.spent_tokens.float().mean()),
            "flops_ratio": float(self.spent_flops.sum() / self.full_flops.sum()),
        }
        stats.update({f"answered_at_{lv:g}": float(c) / len(self.answered_step) for lv, c in zip(self.levels, counts)})
        return stats


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.inference_mode()
def run_cascade(
    model: nn.Module,
    features: Sequence[dict[str, Any]],
    processor: Any,
    icpc: ICPCConfig | None = None,
    levels: Sequence[float] | None = None,
    thresholds: float | Sequence[float] | None = None,
    batch_size: int = 32,
) -> CascadeResult:
    """Classify `features` (full-size, as the collator takes them) with the ICPC cascade.

    Every sample starts at the cheapest level; those whose top-class probability is below that level's threshold
    go on to the next level, in batches; the last level answers whatever is left.
    """
    icpc = icpc or icpc_settings(model)
    modality = REGISTRY[icpc.model_type].modality
    levels = sorted(set(levels if levels is not None else icpc.cascade_levels))
    if not levels:
        raise ValueError("The cascade needs at least one level.")
    if any(not 0.0 < lv <= 1.0 for lv in levels):
        raise ValueError(f"Cascade levels must be in (0, 1], got {levels}.")
    step_thresholds = icpc.thresholds_for(levels, thresholds)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    config = base_model_of(model).config
    device = next(model.parameters()).device
    count = len(features)
    probabilities: torch.Tensor | None = None
    answered = torch.full((count,), -1, dtype=torch.long)
    tokens = torch.zeros(count, dtype=torch.long)
    spent_tokens = torch.zeros(count, dtype=torch.long)
    spent_flops = torch.zeros(count, dtype=torch.float64)
    full_flops = torch.zeros(count, dtype=torch.float64)
    was_training = model.training
    model.eval()
    pending = torch.arange(count)
    for step, (level, threshold) in enumerate(zip(levels, step_thresholds)):
        last = step == len(levels) - 1
        still_pending = []
        for chunk in pending.split(batch_size):
            batch = modality.collate(processor, [features[i] for i in chunk.tolist()], level, icpc)
            batch.pop("labels", None)
            probs = model(**_to_device(batch, device)).logits.float().softmax(-1).cpu()
            if probabilities is None:
                probabilities = torch.zeros(count, probs.shape[-1])
            batch_tokens = modality.tokens(batch, icpc)
            spent_tokens[chunk] += batch_tokens
            spent_flops[chunk] += encoder_flops(batch_tokens, config)
            if step == 0:
                full_flops[chunk] = encoder_flops(modality.full_tokens(batch, icpc), config)
            accept = torch.ones(len(chunk), dtype=torch.bool) if last else probs.max(-1).values >= threshold
            done = chunk[accept]
            probabilities[done] = probs[accept]
            answered[done] = step
            tokens[done] = batch_tokens[accept]
            still_pending.append(chunk[~accept])
        pending = torch.cat(still_pending) if still_pending else pending[:0]
        if len(pending) == 0:
            break
    model.train(was_training)
    if probabilities is None:
        raise ValueError("The cascade got no samples to classify.")
    return CascadeResult(probabilities, levels, answered, tokens, spent_tokens, spent_flops, full_flops)
