"""Per-level compensation: small parameters a grid model uses at one compressed level only (never at full size).

A compensator maps the embeddings of one level's grid to `x + x @ mix + shift + positions`: a per-level patch
projection (`mix`, `shift`: with width >= the patch's values it reaches any projection) and per-level position rows.
Zero-initialised, so a model with fresh compensators answers as without them. They live in the patched embeddings
(`icpc_compensators`), so `save_pretrained` writes them into the model's safetensors; `patch_model` reads them back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

ATTRIBUTE = "icpc_compensators"
PARTS = ("projection", "positions")
if (
    PreTrainedModel._keys_to_ignore_on_load_unexpected is None
):  # an unpatched class loads them quietly; patch_model reads
    PreTrainedModel._keys_to_ignore_on_load_unexpected = [rf"{ATTRIBUTE}\."]


def grid_key(grid: Sequence[int]) -> str:
    return "x".join(str(int(g)) for g in grid)


class LevelCompensator(nn.Module):
    def __init__(self, tokens: int, dim: int, parts: Sequence[str]):
        super().__init__()
        if "projection" in parts:
            self.mix = nn.Parameter(torch.zeros(dim, dim))
            self.shift = nn.Parameter(torch.zeros(dim))
        if "positions" in parts:
            self.positions = nn.Parameter(torch.zeros(tokens, dim))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "mix"):  # over the width, so that an optimiser step moves every output alike at any width
            mix = self.mix.to(embeddings.dtype) / self.mix.shape[0]
            embeddings = embeddings + embeddings @ mix + self.shift.to(embeddings.dtype)
        if hasattr(self, "positions"):
            embeddings = embeddings + self.positions.to(embeddings.dtype)
        return embeddings


def compensate(module: nn.Module, embeddings: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """A compressed grid's embeddings through its level's compensator; unchanged for a model without any."""
    compensators = module._modules.get(ATTRIBUTE)
    if compensators is None:
        return embeddings
    key = grid_key(grid)
    if key not in compensators:
        raise ValueError(
            f"This model has compensation parameters for the grids {list(compensators)} only, not {key}: serve the "
            "levels of `config.icpc['level_compensation']['levels']`, or compensate this level too "
            "(`icpc_hf.training.compensate_levels(..., levels=[...])`)."
        )
    return compensators[key](embeddings)


def install(module: nn.Module, grids: Sequence[Sequence[int]], special: int, dim: int, parts: Sequence[str]) -> None:
    """Give an embeddings module zero compensators for `grids`, keeping those it already has."""
    compensators = module._modules.get(ATTRIBUTE)
    if compensators is None:
        compensators = nn.ModuleDict()
        module.add_module(ATTRIBUTE, compensators)
    reference = next(iter(module.parameters()))
    for grid in grids:
        key = grid_key(grid)
        if key not in compensators:
            tokens = special + int(torch.tensor(list(grid)).prod())
            compensators[key] = LevelCompensator(tokens, dim, parts).to(reference.device)


def saved_tensors(source: str, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix` in the safetensors of the model folder (or Hub repository) `source`."""
    from safetensors import safe_open
    from transformers.utils import cached_file

    index = cached_file(source, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False)
    if index is not None:
        with open(index) as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    found = {}
    for shard in shards:
        path = cached_file(source, shard, _raise_exceptions_for_missing_entries=False)
        if path is None:
            continue
        with safe_open(path, framework="pt") as handle:
            found.update({k[len(prefix) :]: handle.get_tensor(k) for k in handle.keys() if k.startswith(prefix)})
    return found


def restore(base: nn.Module, icpc: Any, embeddings_modules: list[tuple[str, nn.Module]]) -> None:
    """Install the compensators `icpc.level_compensation` names; a module that lacks their values (a model fresh
    from `from_pretrained`, whose class drops them) reads them from the folder it was loaded from."""
    saved = icpc.level_compensation
    grids, parts, dim = saved["grids"], saved["parts"], saved["dim"]
    special = icpc.geometry.get("special_tokens", 0)
    for name, module in embeddings_modules:
        if module._modules.get(ATTRIBUTE) is not None and all(grid_key(g) in module._modules[ATTRIBUTE] for g in grids):
            continue
        install(module, grids, special, dim, parts)
        prefix = f"{name}.{ATTRIBUTE}."
        source = str(getattr(base.config, "_name_or_path", "") or "")
        values = saved_tensors(source, prefix) if source and os.path.exists(source) or "/" in source else {}
        expected = dict(module._modules[ATTRIBUTE].state_dict())
        if set(values) != set(expected):
            raise ValueError(
                f"config.icpc says levels {saved['levels']} have compensation parameters, but {source or 'the model'} "
                f"holds {len(values)} of their {len(expected)} tensors: load the model with `from_pretrained` from "
                "the folder it was saved to, or delete `level_compensation` from config.icpc to serve without them."
            )
        wrong = [k for k in expected if tuple(values[k].shape) != tuple(expected[k].shape)]
        if wrong:
            raise ValueError(
                f"The saved compensation parameters {wrong} have shapes {[tuple(values[k].shape) for k in wrong]}, "
                f"not this model's {[tuple(expected[k].shape) for k in wrong]}: they were saved for another geometry. "
                "Compensate this model's levels again (`icpc_hf.training.compensate_levels`)."
            )
        module._modules[ATTRIBUTE].load_state_dict(values)


def remove(module: nn.Module) -> None:
    module._modules.pop(ATTRIBUTE, None)
