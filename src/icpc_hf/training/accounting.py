"""What compression saved during training: samples, tokens and estimated encoder FLOPs, compressed and at full
size, counted where the model trains, and the `icpc/` figures for each training log."""

from __future__ import annotations

from typing import Any

import torch

from ..costs import encoder_flops
from ..patching import base_model_of
from ..registry import registration_for
from .distill import DISTILLING


class TrainingAccount:
    """Counts every training batch the model sees, with a forward pre-hook between `start` and `stop`.

    A hook rather than the collate function, because batches may be collated in DataLoader workers, whose counts
    never reach the training process.
    """

    def __init__(self) -> None:
        self.train_totals = {"samples": 0, "tokens": 0, "full_tokens": 0, "flops": 0.0, "full_flops": 0.0}
        """Everything trained so far, for reports: samples, tokens and estimated FLOPs, compressed and full."""
        self._at_last_log = dict(self.train_totals)
        self._hook = None

    def start(self, model: Any, icpc: Any) -> None:
        """Count what `model` trains on from now on (calls in training mode with a batch of the model's modality)."""
        config, modality = base_model_of(model).config, registration_for(icpc.model_type).modality

        def count(module, args, inputs):
            if not module.training or args:
                return
            try:
                tokens, full_tokens = modality.batch_tokens(inputs, icpc), modality.full_tokens(inputs, icpc)
            except KeyError:  # not a batch of this modality (e.g. a model called on embeddings)
                return
            totals = self.train_totals
            counted = [("tokens", "flops", tokens)]
            if not getattr(module, DISTILLING, False):  # a smallest-level pass costs tokens, but is no new sample
                totals["samples"] += len(tokens)
                counted.append(("full_tokens", "full_flops", full_tokens))
            for key, flops_key, values in counted:
                totals[key] += int(values.sum())
                totals[flops_key] += float(encoder_flops(values.float(), config).sum())

        self.stop()
        # Bookkeeping in Python, not model code: under torch.compile it runs eagerly rather than break the graph.
        self._hook = model.register_forward_pre_hook(torch.compiler.disable(count), with_kwargs=True)

    def stop(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def figures_since_last_log(self) -> dict[str, float] | None:
        """The `icpc/` figures over the batches since the previous call; None (and nothing consumed) if none."""
        since = {k: v - self._at_last_log[k] for k, v in self.train_totals.items()}
        if since["samples"] == 0:
            return None
        figures = {
            "icpc/tokens_per_sample": since["tokens"] / since["samples"],
            "icpc/token_ratio": since["tokens"] / max(1, since["full_tokens"]),
        }
        if since["full_flops"] > 0:
            figures["icpc/flops_saved"] = 1.0 - since["flops"] / since["full_flops"]
        self._at_last_log = dict(self.train_totals)
        return figures
