"""Cascaded inference: the most compressed input first, less compressed only for samples still unsure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from .config import ICPCConfig
from .costs import encoder_flops
from .patching import base_model_of, icpc_settings
from .registry import family_for


COMBINE_MODES = ("last", "mean", "level_weighted")
BUDGET_UNITS = ("full", "tokens", "flops")


@dataclass
class CascadeResult:
    """Per sample: the answer, the levels that gave it, and the compute spent on the way."""

    probabilities: torch.Tensor
    """Class probabilities of the answer, (samples, classes): the answering level's, or the combination of every
    level run when the cascade combines them (test-time augmentation)."""
    levels: list[float]
    """The cascade's levels, cheapest first."""
    answered_step: torch.Tensor
    """Index into `levels` of the last level run for each sample (the one that answered)."""
    used: torch.Tensor
    """(samples, levels) booleans: which levels each sample was run at."""
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

    def levels_used(self, index: int) -> list[float]:
        return [lv for lv, used in zip(self.levels, self.used[index].tolist()) if used]

    def accuracy(self, labels: Sequence[int] | torch.Tensor) -> float:
        labels = torch.as_tensor(labels)
        return float((self.predictions == labels).float().mean())

    def summary(self) -> dict[str, float]:
        counts = torch.bincount(self.answered_step, minlength=len(self.levels))
        stats = {
            "mean_tokens_spent": float(self.spent_tokens.float().mean()),
            "flops_ratio": float(self.spent_flops.sum() / self.full_flops.sum()),
            "mean_levels_used": float(self.used.sum(1).float().mean()),
        }
        stats.update({f"answered_at_{lv:g}": float(c) / len(self.answered_step) for lv, c in zip(self.levels, counts)})
        return stats


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _rows(batch: dict[str, Any], keep: torch.Tensor) -> dict[str, Any]:
    return {k: v[keep] if isinstance(v, torch.Tensor) and v.dim() and len(v) == len(keep) else v
            for k, v in batch.items()}


def _check_budget(budget: float | None, budget_unit: str) -> None:
    if budget_unit not in BUDGET_UNITS:
        raise ValueError(
            f"Unknown budget unit {budget_unit!r}: use 'full' (multiples of one uncompressed pass), 'tokens' "
            "or 'flops' (per sample)."
        )
    if budget is not None and not budget > 0:
        raise ValueError(f"`budget` must be positive, got {budget!r}.")


@torch.inference_mode()
def run_cascade(
    model: nn.Module,
    features: Sequence[dict[str, Any]],
    processor: Any,
    icpc: ICPCConfig | None = None,
    levels: Sequence[float] | None = None,
    thresholds: float | Sequence[float] | None = None,
    batch_size: int = 32,
    combine: str = "last",
    budget: float | None = None,
    budget_unit: str = "full",
) -> CascadeResult:
    """Classify `features` (full-size, as the collator takes them) with the ICPC cascade.

    Every sample starts at the cheapest level; those whose confidence is below that level's threshold go on to the
    next level, in batches; the last level answers whatever is left. With `combine="mean"` (or
    `"level_weighted"`, weights proportional to the level) the answer and its confidence are the combination of
    the probabilities of every level run so far, so an unsure sample spends further passes on test-time
    augmentation rather than on one larger pass. `budget` caps what a sample may spend (`budget_unit`: multiples
    of one uncompressed pass in estimated FLOPs, or tokens, or FLOPs): a level that would exceed it is skipped
    and the sample answers with what it has. Thresholds of 1.0 with a budget give plain budgeted TTA.
    """
    icpc = icpc or icpc_settings(model)
    modality = family_for(icpc.model_type).modality
    levels = sorted(set(levels if levels is not None else icpc.cascade_levels))
    if not levels:
        raise ValueError("The cascade needs at least one level, got an empty list.")
    if any(not 0.0 < lv <= 1.0 for lv in levels):
        raise ValueError(f"Cascade levels must be in (0, 1], got {levels}.")
    if combine not in COMBINE_MODES:
        raise ValueError(f"Unknown `combine` {combine!r}: use one of {', '.join(COMBINE_MODES)}.")
    _check_budget(budget, budget_unit)
    step_thresholds = icpc.thresholds_for(levels, thresholds)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    config = base_model_of(model).config
    device = next(model.parameters()).device
    count = len(features)
    if count == 0:
        raise ValueError("The cascade got no samples to classify.")
    summed: torch.Tensor | None = None
    weights = torch.zeros(count, dtype=torch.float64)
    answered = torch.full((count,), -1, dtype=torch.long)
    used = torch.zeros(count, len(levels), dtype=torch.bool)
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
            batch_tokens = modality.tokens(batch, icpc)
            batch_flops = encoder_flops(batch_tokens, config)
            if step == 0:
                full_flops[chunk] = encoder_flops(modality.full_tokens(batch, icpc), config)
            fits = torch.ones(len(chunk), dtype=torch.bool)
            if budget is not None:
                spent, cost = {"tokens": (spent_tokens[chunk], batch_tokens)}.get(
                    budget_unit, (spent_flops[chunk], batch_flops)
                )
                limit = budget * full_flops[chunk] if budget_unit == "full" else budget
                fits = spent + cost <= limit * (1 + 1e-9)
                if step == 0 and not bool(fits.all()):
                    raise ValueError(
                        f"A budget of {budget} {budget_unit} is smaller than the cheapest cascade level ({level}) "
                        "costs: raise the budget or add a cheaper level."
                    )
            run = chunk[fits]
            if len(run):
                probs = model(**_to_device(_rows(batch, fits), device)).logits.float().softmax(-1).cpu()
                if summed is None:
                    summed = torch.zeros(count, probs.shape[-1], dtype=torch.float64)
                weight = level if combine == "level_weighted" else 1.0
                if combine == "last":
                    summed[run], weights[run] = probs.double(), 1.0
                else:
                    summed[run] += weight * probs.double()
                    weights[run] += weight
                used[run, step] = True
                answered[run] = step
                tokens[run] = batch_tokens[fits]
                spent_tokens[run] += batch_tokens[fits]
                spent_flops[run] += batch_flops[fits]
            confidence = (summed[chunk] / weights[chunk, None]).max(-1).values
            accept = ~fits | (confidence >= threshold) | last
            still_pending.append(chunk[~accept])
        pending = torch.cat(still_pending)
        if len(pending) == 0:
            break
    model.train(was_training)
    probabilities = (summed / weights[:, None]).float()
    return CascadeResult(probabilities, levels, answered, used, tokens, spent_tokens, spent_flops, full_flops)
