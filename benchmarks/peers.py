"""Peers and ablations of ICPC, built on the same models: PatchDropout (Liu et al., 2022), re-indexed text positions.

PatchDropout keeps a random subset of the patch tokens of each training sample after the position embeddings
are added, so kept patches keep their original positions; at evaluation every patch is kept. Here it is a
forward hook on the embeddings of any image model the registry knows, at the token budget ICPC's levels give.
"""

from __future__ import annotations

import torch
from torch import nn

from icpc_hf import REGISTRY


def add_patch_dropout(model: nn.Module, keep_ratio: float, generator_seed: int = 0) -> nn.Module:
    """Keep `keep_ratio` of the patch tokens (random per sample and step) in training; all of them in eval."""
    embeddings = model.base_model.embeddings
    special = REGISTRY[model.config.model_type].architecture.geometry(model.config).get("special_tokens", 1)  # CLS, ...
    generator = torch.Generator().manual_seed(generator_seed)

    def keep_subset(module, inputs, output):
        if not module.training:
            return output
        leading, patches = output[:, :special], output[:, special:]
        batch, count, dim = patches.shape
        keep = max(1, round(keep_ratio * count))
        order = torch.rand(batch, count, generator=generator).argsort(dim=1)[:, :keep].sort(dim=1).values
        kept = patches.gather(1, order.to(patches.device).unsqueeze(-1).expand(-1, -1, dim))
        return torch.cat((leading, kept), dim=1)

    embeddings.register_forward_hook(keep_subset)
    return model


def reindex_positions(model: nn.Module) -> nn.Module:
    """Text ablation: number the kept tokens 0..n-1, as if the pruned text had been written that way, instead of
    keeping their original positions. The first token (never pruned) carries the model's position offset."""

    def renumber(module, args, kwargs):
        positions = kwargs.get("position_ids")
        if positions is not None:
            steps = torch.arange(positions.shape[-1], device=positions.device)
            kwargs["position_ids"] = positions[:, :1] + steps
        return args, kwargs

    model.register_forward_pre_hook(renumber, with_kwargs=True)
    return model
