"""`patch_model`: make an unchanged Transformer accept compressed inputs with consistent positions."""

from __future__ import annotations

from torch import nn

from .config import CONFIG_KEY, ICPCConfig, as_icpc_config
from .device import install as install_device_hook
from .device import remove as remove_device_hook
from .registry import registration_for


def base_model_of(model: nn.Module) -> nn.Module:
    """The Transformers model inside PEFT, DDP or compile wrappers: the one that owns `config`."""
    seen = set()
    while id(model) not in seen:
        seen.add(id(model))
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        elif hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
    if not hasattr(model, "config"):
        raise TypeError(f"Expected a Transformers model (with a `config`), got {type(model).__name__}.")
    return model


def is_patched(model: nn.Module) -> bool:
    return getattr(base_model_of(model), "_icpc_settings", None) is not None


def icpc_settings(model: nn.Module) -> ICPCConfig:
    """The resolved settings of a patched model (raises with the fix when the model is not patched)."""
    settings = getattr(base_model_of(model), "_icpc_settings", None)
    if settings is None:
        raise ValueError(
            f"{type(model).__name__} is not patched for ICPC: call `icpc_hf.patch_model(model, ICPCConfig())` "
            "before training or inference; compressed inputs would otherwise fail or be misread."
        )
    return settings


def _refuse_position_ids(module: nn.Module, args: tuple, kwargs: dict) -> None:
    if kwargs.get("position_ids") is not None:
        raise ValueError(
            f"{type(module).__name__} takes its positions from the input grid and would silently ignore "
            "`position_ids`: remove them from the batch (ICPCDataCollator does not produce them for this model)."
        )


def patch_model(model: nn.Module, icpc: ICPCConfig | dict | None = None) -> nn.Module:
    """Patch `model` in place for ICPC and return it.

    With `icpc=None`, the settings saved in `model.config.icpc` are re-applied (or the defaults, for a model
    never patched). The resolved settings are stored in `model.config.icpc`, so `save_pretrained` keeps them.
    """
    base = base_model_of(model)
    registration = registration_for(base.config)
    architecture = registration.architectures[base.config.model_type]
    stored = getattr(base.config, CONFIG_KEY, None)
    if icpc is None:
        icpc = ICPCConfig.from_dict(stored) if stored is not None else ICPCConfig()
    else:
        icpc = as_icpc_config(icpc)
    if icpc.model_type is not None and icpc.model_type != base.config.model_type:
        raise ValueError(
            f"These ICPC settings were resolved for a {icpc.model_type!r} model and cannot patch a "
            f"{base.config.model_type!r} one: start from a fresh ICPCConfig()."
        )
    if icpc.position_strategy is None:
        icpc.position_strategy = (stored or {}).get("position_strategy") or architecture.position_strategy(base)
    registration.modality.resolve(icpc, base.config)
    if icpc.schedule is None:
        icpc.schedule = registration.modality.default_schedule(icpc)
    icpc.geometry.update(architecture.geometry(base.config))
    icpc.model_type = base.config.model_type
    architecture.apply(base, icpc)
    setattr(base.config, CONFIG_KEY, icpc.to_dict())
    if getattr(base, "_icpc_settings", None) is None and not architecture.accepts_position_ids:
        base._icpc_guard = base.register_forward_pre_hook(_refuse_position_ids, with_kwargs=True)
    base._icpc_settings = icpc
    install_device_hook(base, icpc)
    return model


def unpatch_model(model: nn.Module) -> nn.Module:
    """Restore the original embeddings (the weights are untouched); `config.icpc` is kept."""
    base = base_model_of(model)
    registration_for(base.config).architectures[base.config.model_type].remove(base)
    guard = getattr(base, "_icpc_guard", None)
    if guard is not None:
        guard.remove()
        base._icpc_guard = None
    remove_device_hook(base)
    base._icpc_settings = None
    return model
