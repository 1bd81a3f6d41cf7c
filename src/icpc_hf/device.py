"""Compression on the model's device: the collator hands over full-size image, video and audio batches with their
level's patch grid, and a forward pre-hook of the patched model resamples them where the model runs.

On an accelerator this takes the resampling (an antialiased resize, the bulk of a grid modality's collate time)
off the CPU that feeds it, so the data pipeline costs no more than a plain Trainer's. The hook applies the same
function as the CPU path (`GridModality.compress`), so both paths give the same batch: equal on one device, within
float tolerance across devices, and untouched at full size.
"""

from __future__ import annotations

import weakref
from typing import Any

from torch import nn

from .modality import GRID_KEY, GridModality, grid_of_marker

ACCELERATORS = ("cuda", "mps", "xpu", "hpu", "npu", "mlu", "xla")
"""Device types where `resize_on_device=None` resamples on the device."""

RECEIVERS: weakref.WeakSet[nn.Module] = weakref.WeakSet()
"""Patched models of this process whose hook compresses batches on their device."""


def modality_of(icpc: Any) -> Any:
    from .registry import REGISTRY

    return REGISTRY[icpc.model_type].modality


def compress_on_device(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    """Forward pre-hook of a patched model: resample the batch to the grid it carries, and drop the grid."""
    if GRID_KEY not in kwargs:
        return None
    marker = kwargs.pop(GRID_KEY)
    icpc = module._icpc_settings
    modality = modality_of(icpc)
    if modality.input_key not in kwargs:
        raise ValueError(
            f"The batch carries `{GRID_KEY}` (from `ICPCDataCollator(resize_on_device=...)`) but its "
            f"`{modality.input_key}` is not a keyword argument: call the model as `model(**batch)`."
        )
    modality.compress(kwargs, grid_of_marker(marker), icpc)
    return args, kwargs


def refuse_grid(module: nn.Module, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook left on an unpatched model: a batch meant for the device path must not train at full size."""
    if GRID_KEY in kwargs:
        raise ValueError(
            f"{type(module).__name__} received `{GRID_KEY}`, a full-size batch ICPCDataCollator left for the model to "
            "compress on its device, but it is not patched for ICPC: call `icpc_hf.patch_model(model)` (a model "
            "loaded with `config.icpc` needs it too), or collate with `resize_on_device=False`."
        )


def install(base: nn.Module, icpc: Any) -> None:
    """Give a patched grid model the hook (once); text models keep pruning in the collator."""
    if not isinstance(modality_of(icpc), GridModality):
        return
    old = getattr(base, "_icpc_device_hook", None)
    if old is not None:
        old.remove()
    base._icpc_device_hook = base.register_forward_pre_hook(compress_on_device, with_kwargs=True)
    RECEIVERS.add(base)


def remove(base: nn.Module) -> None:
    """On unpatching: swap the hook for one that refuses device-path batches."""
    old = getattr(base, "_icpc_device_hook", None)
    if old is None:
        return
    old.remove()
    base._icpc_device_hook = base.register_forward_pre_hook(refuse_grid, with_kwargs=True)
    RECEIVERS.discard(base)


__all__ = ["ACCELERATORS", "GRID_KEY", "compress_on_device"]
