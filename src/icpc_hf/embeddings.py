"""The one way icpc_hf changes a model: it swaps the class of its embeddings module for a subclass.

Swapping the class of the existing module keeps its parameters, buffers, hooks and state-dict keys, so a
patched model saves, loads, wraps (PEFT, DDP) and compiles like the original; removing the patch restores the
original class. Only the embeddings change: everything after them is the unchanged Transformer.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from . import compensation
from .config import CONFIG_KEY, ICPCConfig
from .grid import PositionCache, conv_output_size, neighbour_similarity


class GridEmbeddingsMixin:
    """State and checks shared by the embeddings of every patch-grid model (ViT, AST, VideoMAE, ViViT)."""

    icpc_full_grid: tuple[int, ...]
    icpc_strategy: str | None  # None until a deferred strategy is decided (`defer_strategy`)

    def icpc_setup(self, icpc: ICPCConfig) -> None:
        self.icpc_full_grid = tuple(icpc.geometry["full_grid"])
        self.icpc_strategy = icpc.position_strategy
        self.icpc_cache = PositionCache()

    def icpc_learned_table(self) -> tuple[torch.Tensor, tuple[int, ...]] | None:
        """The patches' rows of a learned position table and the grid they cover; None where this architecture's
        table is fixed or not read (its `position_strategy=None` resolves to `crop`)."""
        return None

    def icpc_positions(self, table: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """Positions of a compressed grid from the (prod(full_grid), dim) table, by the configured strategy."""
        if self.icpc_strategy is None:  # deferred, and the weights came inside this forward (accelerate's offload)
            decide_deferred(self)
        strategy = self.icpc_strategy or "crop"  # still on meta: any strategy gives these shapes
        return self.icpc_cache.positions(table, self.icpc_full_grid, grid, strategy)

    def icpc_check_grid(
        self, sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], what: str
    ) -> tuple[int, ...]:
        """The patch grid an input of `sizes` produces, or a ValueError saying why the model can't take it."""
        grid = tuple(conv_output_size(s, k, st) for s, k, st in zip(sizes, kernel, stride))
        if any(g < 1 for g in grid):
            raise ValueError(
                f"This {what} input of size {tuple(sizes)} is smaller than one patch {tuple(kernel)}: "
                "use a larger input or a higher compression level."
            )
        if any(g > f for g, f in zip(grid, self.icpc_full_grid)):
            raise ValueError(
                f"This {what} input of size {tuple(sizes)} gives a {tuple(grid)} patch grid, larger than the "
                f"model's {self.icpc_full_grid}: ICPC only shrinks inputs; resize to the model's size or below."
            )
        return grid


LAYOUT_THRESHOLD = 0.18
"""A position table whose neighbouring patches' rows are at least this alike (`neighbour_similarity`) has learned the
grid's layout: halfway between fresh tables (about 0) and the pretrained checkpoint of docs/results/selection-rounds.md,
round 4 (0.355), measured before that round's runs."""


def layout_strategy(learned: tuple[torch.Tensor, tuple[int, ...]] | None) -> str | None:
    """`position_strategy=None` for a table (`icpc_learned_table`): `interpolate` once it has learned the grid's layout
    (pretrained: each patch keeps its region's position), else `crop` (selection-rounds.md, round 4); None on the meta
    device, where it has no values yet."""
    if learned is None:
        return "crop"
    if learned[0].is_meta:
        return None
    return "interpolate" if neighbour_similarity(*learned) >= LAYOUT_THRESHOLD else "crop"


def defer_strategy(module: nn.Module, settings: ICPCConfig, model_config: Any) -> None:
    """Patched on the meta device (`init_empty_weights`, `from_pretrained` of a class patched at construction): decide
    at the next `load_state_dict` or forward, from the loaded table, and write it into the settings and `config.icpc`
    (None until then: saved settings never name a strategy no forward used). The position cache holds no weights:
    its indices are made at a forward, keyed by the table's device."""
    hooks = (
        module.register_forward_pre_hook(decide_deferred),
        module.register_load_state_dict_post_hook(decide_deferred),
    )
    module.icpc_deferred = settings, model_config, hooks


def decide_deferred(module: nn.Module, *_: Any) -> None:  # a hook: returns None
    settings, model_config, _ = vars(module).get("icpc_deferred", (None, None, ()))
    strategy = settings and (settings.position_strategy or layout_strategy(module.icpc_learned_table()))
    if strategy:
        settings.position_strategy = module.icpc_strategy = strategy
        stored = getattr(model_config, CONFIG_KEY, None)
        if isinstance(stored, dict):
            stored["position_strategy"] = strategy
        close_deferral(module)


def close_deferral(module: nn.Module) -> None:
    for hook in vars(module).pop("icpc_deferred", (None, None, ()))[2]:
        hook.remove()


def rebind_dispatched_forward(module: nn.Module, previous: type[nn.Module]) -> None:
    """accelerate's dispatch hooks (`device_map` offload) call the forward bound when attached (`_old_forward`):
    rebind it to the module's class, or a model dispatched before patching keeps the original forward."""
    bound = vars(module).get("_old_forward")
    if isinstance(bound, types.MethodType) and bound.__self__ is module and bound.__func__ is previous.forward:
        module._old_forward = types.MethodType(type(module).forward, module)


class SwappedEmbeddings:
    """Swap every `original` module of a model for `patched`, a subclass defining `icpc_setup`.

    `special_tokens`: the tokens the embeddings put before the patches (CLS, distillation), which every pass
    computes whatever the level.
    """

    accepts_position_ids = False

    def __init__(self, original: type[nn.Module], patched: type[nn.Module], special_tokens: int):
        if not issubclass(patched, original):
            raise TypeError(f"{patched.__name__} must subclass {original.__name__}.")
        self.original = original
        self.patched = patched
        self.special_tokens = special_tokens

    def geometry(self, model_config: Any) -> dict[str, Any]:
        return {"special_tokens": self.special_tokens}

    def position_strategy(self, model: nn.Module) -> str | None:
        """`layout_strategy` of the first embeddings' table (None on meta: `apply` defers it)."""
        module = next((m for m in model.modules() if type(m) in (self.original, self.patched)), None)
        return layout_strategy(None if module is None else self.patched.icpc_learned_table(module))

    def apply(self, model: nn.Module, icpc: ICPCConfig) -> int:
        count = 0
        for module in model.modules():
            if type(module) in (self.original, self.patched):
                close_deferral(module)
                previous = type(module)
                module.__class__ = self.patched
                rebind_dispatched_forward(module, previous)
                module.icpc_setup(icpc)
                if icpc.position_strategy is None:
                    defer_strategy(module, icpc, model.config)
                count += 1
        if count == 0:
            raise ValueError(
                f"No {self.original.__name__} module found in {type(model).__name__}: this model does not use the "
                "embeddings icpc_hf knows how to patch."
            )
        patched = [(name, m) for name, m in model.named_modules() if type(m) is self.patched]
        if icpc.level_compensation:
            compensation.restore(model, icpc, patched)
        else:  # settings without compensation: the levels answer as trained
            for _, module in patched:
                compensation.remove(module)
        return count

    def remove(self, model: nn.Module) -> None:
        for module in model.modules():
            if type(module) is self.patched:
                close_deferral(module)
                module.__class__ = self.original
                rebind_dispatched_forward(module, self.patched)
                for name in [n for n in vars(module) if n.startswith("icpc_")]:
                    delattr(module, name)
