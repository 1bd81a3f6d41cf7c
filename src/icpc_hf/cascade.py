"""Cascaded inference: the most compressed input first, less compressed only for samples still unsure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import ICPCConfig
from .costs import encoder_flops
from .device import ACCELERATORS
from .modality import GridModality
from .patching import base_model_of, icpc_settings
from .registry import registration_for
from .serving_inputs import check_finite, check_levels, positive

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
    return {
        k: v[keep] if isinstance(v, torch.Tensor) and v.dim() and len(v) == len(keep) else v for k, v in batch.items()
    }


def _check_budget(budget: float | None, budget_unit: str) -> None:
    if budget_unit not in BUDGET_UNITS:
        raise ValueError(
            f"Unknown budget unit {budget_unit!r}: use 'full' (multiples of one uncompressed pass), 'tokens' "
            "or 'flops' (per sample)."
        )
    if budget is not None:
        positive("budget", budget, f"what a sample may spend in {budget_unit!r}, or None")


@dataclass(frozen=True)
class CascadePolicy:
    """The cascade's rules, in one place for `run_cascade`, the pipelines (which call it) and calibration's replay:
    which levels run in which order, when a sample stops, how the answers of several levels combine, and what a
    sample may spend."""

    levels: tuple[float, ...] | None
    """Cheapest first; None when replaying passes already made (calibration)."""
    thresholds: tuple[float, ...]
    """One per level; the last level always answers."""
    combine: str = "last"
    budget: float | None = None
    budget_unit: str = "full"

    @classmethod
    def from_settings(
        cls,
        icpc: ICPCConfig,
        levels: Sequence[float] | None = None,
        thresholds: float | Sequence[float] | None = None,
        combine: str = "last",
        budget: float | None = None,
        budget_unit: str = "full",
    ) -> CascadePolicy:
        """The policy of a call: its arguments where given, the model's ICPC settings otherwise; refuses bad ones."""
        levels = check_levels(levels if levels is not None else icpc.cascade_levels)
        if combine not in COMBINE_MODES:
            raise ValueError(f"Unknown `combine` {combine!r}: use one of {', '.join(COMBINE_MODES)}.")
        _check_budget(budget, budget_unit)
        return cls(tuple(levels), tuple(icpc.thresholds_for(levels, thresholds)), combine, budget, budget_unit)

    def accepts(self, confidence: torch.Tensor, step: int) -> torch.Tensor:
        """Which samples stop at `step`: confident enough, or at the last level."""
        if step == len(self.thresholds) - 1:
            return torch.ones_like(confidence, dtype=torch.bool)
        return confidence >= self.thresholds[step]

    def weight(self, level: float) -> float:
        """A level's weight when answers combine (test-time augmentation)."""
        return level if self.combine == "level_weighted" else 1.0

    def within_budget(
        self, answers: _Answers, chunk: torch.Tensor, tokens: torch.Tensor, flops: torch.Tensor
    ) -> torch.Tensor:
        """Which samples of `chunk` can afford a pass costing `tokens` / `flops` more."""
        if self.budget is None:
            return torch.ones(len(chunk), dtype=torch.bool)
        if self.budget_unit == "tokens":
            spent, cost = answers.spent_tokens[chunk], tokens
        else:
            spent, cost = answers.spent_flops[chunk], flops
        limit = self.budget * answers.full_flops[chunk] if self.budget_unit == "full" else self.budget
        return spent + cost <= limit * (1 + 1e-9)


class _Answers:
    """What a cascade knows about every sample so far: its (combined) probabilities, the levels run, their cost."""

    def __init__(self, count: int, num_levels: int):
        self.summed: torch.Tensor | None = None
        """(samples, classes), allocated at the first pass, which tells the number of classes."""
        self.weights = torch.zeros(count, dtype=torch.float64)
        self.answered = torch.full((count,), -1, dtype=torch.long)
        self.used = torch.zeros(count, num_levels, dtype=torch.bool)
        self.tokens = torch.zeros(count, dtype=torch.long)
        self.spent_tokens = torch.zeros(count, dtype=torch.long)
        self.spent_flops = torch.zeros(count, dtype=torch.float64)
        self.full_flops = torch.zeros(count, dtype=torch.float64)

    def record(
        self,
        run: torch.Tensor,
        step: int,
        probabilities: torch.Tensor,
        policy: CascadePolicy,
        tokens: torch.Tensor,
        flops: torch.Tensor,
    ) -> None:
        if self.summed is None:
            self.summed = torch.zeros(len(self.weights), probabilities.shape[-1], dtype=torch.float64)
        if policy.combine == "last":
            self.summed[run], self.weights[run] = probabilities.double(), 1.0
        else:
            weight = policy.weight(policy.levels[step])
            self.summed[run] += weight * probabilities.double()
            self.weights[run] += weight
        self.used[run, step] = True
        self.answered[run] = step
        self.tokens[run] = tokens
        self.spent_tokens[run] += tokens
        self.spent_flops[run] += flops

    def confidence(self, chunk: torch.Tensor) -> torch.Tensor:
        return (self.summed[chunk] / self.weights[chunk, None]).max(-1).values

    def result(self, levels: Sequence[float]) -> CascadeResult:
        probabilities = (self.summed / self.weights[:, None]).float()
        return CascadeResult(
            probabilities,
            list(levels),
            self.answered,
            self.used,
            self.tokens,
            self.spent_tokens,
            self.spent_flops,
            self.full_flops,
        )


@dataclass
class _CascadeRun:
    """One call of `run_cascade`: what every step needs, looked up once."""

    model: nn.Module
    features: Sequence[dict[str, Any]]
    processor: Any
    icpc: ICPCConfig
    policy: CascadePolicy

    def __post_init__(self) -> None:
        self.modality = registration_for(self.icpc.model_type).modality
        self.config = base_model_of(self.model).config
        self.device = next(self.model.parameters()).device
        self.answers = _Answers(len(self.features), len(self.policy.levels))
        self.on_device = isinstance(self.modality, GridModality) and self.device.type in ACCELERATORS
        """Resample each level on the model's accelerator (its patched hook), as training does (docs/guides/device.md)."""

    def step(self, step: int, chunk: torch.Tensor) -> torch.Tensor:
        """Run the samples of `chunk` at the policy's `step`; returns those that go on to the next level. Without a
        budget there is no row to drop, and at the last level no confidence to read: full size alone costs what a
        plain batched forward pass costs."""
        policy, answers, modality, icpc = self.policy, self.answers, self.modality, self.icpc
        level = policy.levels[step]
        features = [self.features[i] for i in chunk.tolist()]
        if self.on_device and modality.arrives_full_size(features, icpc):
            batch = modality.collate_deferred(self.processor, features, level, icpc)
        else:
            batch = modality.collate(self.processor, features, level, icpc)
        batch.pop("labels", None)
        check_finite(batch, chunk)
        tokens = modality.batch_tokens(batch, icpc)
        flops = encoder_flops(tokens, self.config)
        if step == 0:
            full_tokens = modality.full_tokens(batch, icpc)
            same = torch.equal(full_tokens, tokens)  # full size: the same estimate, computed once
            answers.full_flops[chunk] = flops if same else encoder_flops(full_tokens, self.config)
        run, fits = chunk, None
        if policy.budget is not None:
            fits = policy.within_budget(answers, chunk, tokens, flops)
            if step == 0 and not bool(fits.all()):
                raise ValueError(
                    f"A budget of {policy.budget} {policy.budget_unit} is smaller than the cheapest cascade level "
                    f"({level}) costs: raise the budget or add a cheaper level."
                )
            run, batch, tokens, flops = chunk[fits], _rows(batch, fits), tokens[fits], flops[fits]
        if len(run):
            probabilities = self.model(**_to_device(batch, self.device)).logits.float().softmax(-1).cpu()
            answers.record(run, step, probabilities, policy, tokens, flops)
        if step == len(policy.levels) - 1:
            return chunk[:0]
        accept = policy.accepts(answers.confidence(chunk), step)
        return chunk[~(accept if fits is None else accept | ~fits)]


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
    policy = CascadePolicy.from_settings(icpc, levels, thresholds, combine, budget, budget_unit)
    positive("batch_size", batch_size, "samples per forward pass", integer=True)
    if len(features) == 0:
        raise ValueError("The cascade got no samples to classify.")
    cascade = _CascadeRun(model, features, processor, icpc, policy)
    was_training = model.training
    switch = any(module.training for module in model.modules())  # switching costs a tiny model's forward pass,
    if switch:  # and threads sharing a model in eval mode must not switch it back and forth
        model.eval()
    try:
        pending = torch.arange(len(features))
        for step in range(len(policy.levels)):
            pending = torch.cat([cascade.step(step, chunk) for chunk in pending.split(batch_size)])
            if len(pending) == 0:
                break
    finally:
        if switch:
            model.train(was_training)
    return cascade.answers.result(policy.levels)
