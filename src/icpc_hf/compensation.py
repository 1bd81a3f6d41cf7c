"""Per-level compensation: parameters a grid model uses at one compressed level only, never at full size.

A level's compensator maps its embeddings to `x + x @ mix / width + shift + positions` (a per-level projection and
position rows), zero at the start. It lives in the patched embeddings (`icpc_compensators`), so `save_pretrained`
writes it with the weights; `patch_model` reads it back (an unpatched class drops it on load).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

ATTRIBUTE = "icpc_compensators"
PARTS = ("projection", "positions")
if PreTrainedModel._keys_to_ignore_on_load_unexpected is None:  # loaded quietly by an unpatched class
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "mix"):  # over the width: one optimiser step moves the outputs alike at any width
            x = x + x @ (self.mix.to(x.dtype) / self.mix.shape[0]) + self.shift.to(x.dtype)
        return x + self.positions.to(x.dtype) if hasattr(self, "positions") else x


def compensate(module: nn.Module, embeddings: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """A compressed grid's embeddings through its level's compensator; unchanged in a model without any."""
    compensators = module._modules.get(ATTRIBUTE)
    if compensators is None:
        return embeddings
    if grid_key(grid) not in compensators:
        raise ValueError(
            f"This model has compensation parameters for the grids {list(compensators)}, not {grid_key(grid)}: serve "
            "the levels of config.icpc['level_compensation'], or compensate this one (`compensate_levels`)."
        )
    return compensators[grid_key(grid)](embeddings)


def install(module: nn.Module, grids: Sequence[Sequence[int]], special: int, dim: int, parts: Sequence[str]) -> None:
    """Zero compensators for `grids` in an embeddings module, keeping those it has."""
    if module._modules.get(ATTRIBUTE) is None:
        module.add_module(ATTRIBUTE, nn.ModuleDict())
    device = next(module.parameters()).device
    for grid in grids:
        if grid_key(grid) not in module._modules[ATTRIBUTE]:
            tokens = special + int(torch.tensor(list(grid)).prod())
            module._modules[ATTRIBUTE][grid_key(grid)] = LevelCompensator(tokens, dim, parts).to(device)


def saved_tensors(source: str, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix` in the safetensors of the model folder or Hub repository `source`."""
    from safetensors import safe_open
    from transformers.utils import cached_file

    def find(name):
        return cached_file(source, name, _raise_exceptions_for_missing_entries=False) if source else None

    index = find("model.safetensors.index.json")
    shards = ["model.safetensors"]
    if index is not None:
        with open(index) as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
    found = {}
    for path in filter(None, map(find, shards)):
        with safe_open(path, framework="pt") as handle:
            found.update({k[len(prefix) :]: handle.get_tensor(k) for k in handle.keys() if k.startswith(prefix)})
    return found


def restore(base: nn.Module, icpc: Any, modules: list[tuple[str, nn.Module]]) -> None:
    """Install the compensators `icpc.level_compensation` names; a module without their values (fresh from
    `from_pretrained`) reads them from the folder the model was loaded from."""
    saved = icpc.level_compensation
    if not isinstance(saved, dict) or not {"levels", "grids", "parts", "dim"} <= set(saved):
        raise ValueError(f"`level_compensation` is what `compensate_levels` records, not {saved!r}: leave it be.")
    for name, module in modules:
        held = module._modules.get(ATTRIBUTE)
        if held is not None and all(grid_key(g) in held for g in saved["grids"]):
            continue
        install(module, saved["grids"], icpc.geometry.get("special_tokens", 0), saved["dim"], saved["parts"])
        source = str(getattr(base.config, "_name_or_path", "") or "")
        try:
            values = saved_tensors(source, f"{name}.{ATTRIBUTE}.")
        except OSError:
            values = {}
        expected = module._modules[ATTRIBUTE].state_dict()
        if set(values) != set(expected):
            raise ValueError(
                f"config.icpc says levels {saved['levels']} have compensation parameters, but {source or 'the model'} "
                f"holds {len(values)} of their {len(expected)} tensors: load the model with `from_pretrained` from the "
                "folder it was saved to, or delete `level_compensation` from config.icpc to serve without them."
            )
        wrong = sorted(k for k in expected if values[k].shape != expected[k].shape)
        if wrong:
            raise ValueError(
                f"The saved compensation parameters {wrong} do not fit this model's shapes: they were saved for another "
                "geometry. Compensate this model's levels again (`icpc_hf.training.compensate_levels`)."
            )
        module._modules[ATTRIBUTE].load_state_dict(values)


def remove(module: nn.Module) -> None:
    module._modules.pop(ATTRIBUTE, None)
