"""ICPCDataCollator: the features a user already has in, a batch compressed to its level out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch.utils.data
from torch import nn

from .. import device as device_path
from ..config import ICPCConfig, as_icpc_config
from ..device import ACCELERATORS
from ..drawn_level import current_batch
from ..modality import GridModality
from ..registry import REGISTRY
from .settings import check_training_settings


def label_tensor(features: Sequence[dict[str, Any]]) -> torch.Tensor | None:
    """Labels under `labels` or `label`, as the user's dataset has them; None when there are none."""
    for key in ("labels", "label"):
        if key in features[0]:
            values = [f.get(key) for f in features]
            if any(v is None for v in values):
                raise ValueError(f"Some features have `{key}` missing or set to None: label every training sample.")
            first = values[0]
            if isinstance(first, str):
                raise ValueError(
                    f"`{key}` holds class names ({first!r}); the model takes class ids: map them with "
                    "`model.config.label2id` (or `datasets.ClassLabel`) first."
                )
            if isinstance(first, torch.Tensor):
                return torch.stack([torch.as_tensor(v) for v in values])
            dtype = torch.float if isinstance(first, float) else torch.long
            return torch.tensor(values, dtype=dtype)
    return None


def with_labels(batch: dict[str, Any], features: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The batch, with the features' labels added when they have any."""
    labels = label_tensor(features)
    if labels is not None:
        batch["labels"] = labels
    return batch


def check_finite(batch: dict[str, Any]) -> None:
    """Refuse NaN or inf in a batch's float tensors: the model would turn them silently into NaN logits and loss.

    Run once on the collated (often compressed) batch, so every modality pays it once: a tensor's sum is finite
    when all its values are, and one reduction costs a third of `isfinite().all()` on CPU; only a non-finite sum
    (NaN, inf, or a float overflow) pays for the exact check.
    """
    for key, value in batch.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or not value.numel():
            continue
        if not math.isfinite(value.sum().item()) and not bool(torch.isfinite(value).all()):
            raise ValueError(
                f"The batch's `{key}` holds NaN or infinite values: clean or drop the samples whose `{key}` (or the "
                "raw input it was made from) is not finite before collating them."
            )


def has_receiver(model_type: str) -> bool:
    """Whether this process holds a patched model of `model_type` to compress device-path batches."""
    return any(
        getattr(m, "_icpc_settings", None) is not None and m.config.model_type == model_type
        for m in list(device_path.RECEIVERS)
    )


def device_type(model: nn.Module) -> str:
    """Where a model's parameters are: 'cuda', 'cpu', 'mps'..."""
    parameter = next(iter(model.parameters()), None)
    return parameter.device.type if parameter is not None else "cpu"


class ICPCDataCollator:
    """Collate features at the level the ICPC sampler chose for the batch (uncompressed otherwise).

    `processor` is the model's image processor, tokenizer, feature extractor or video processor; `icpc` the
    settings (an ICPCConfig, or `model.config.icpc`). Inside a Trainer with `ICPCCallback`, or a DataLoader
    whose collate function is `LevelPlan(icpc, num_epochs).bind(collator)`, each training batch is compressed to
    its drawn level (in the main process or a DataLoader worker alike); anywhere else (evaluation, prediction) it
    is collated uncompressed, or at `level` when one is given.

    `resize_on_device`: where image, video and audio batches are resampled to their level (docs/guides/device.md).
    False: here, on the CPU (in DataLoader workers when there are any). True: the batch leaves at full size with
    its level's patch grid (`icpc_grid`), and the patched model resamples it on its device before its embeddings,
    with the same function, so the CPU does no more than for a plain Trainer. None (default): on the device when
    ICPCCallback reports the model on an accelerator and the batch's inputs arrive at the model's size; on the
    CPU otherwise, where both paths cost the same work and DataLoader workers can run it in parallel, and for
    inputs of other sizes, which the CPU path resamples once rather than twice. Text is always pruned here.
    """

    def __init__(
        self,
        processor: Any,
        icpc: ICPCConfig | dict | None = None,
        level: float | None = None,
        resize_on_device: bool | None = None,
    ):
        self.processor = processor
        self.icpc = check_training_settings(as_icpc_config(icpc))
        if level is not None and not 0.0 < level <= 1.0:
            raise ValueError(f"`level` must be in (0, 1], got {level!r}.")
        self.level = level
        if resize_on_device not in (None, True, False):
            raise ValueError(f"`resize_on_device` must be None, True or False, got {resize_on_device!r}.")
        self.resize_on_device = resize_on_device
        self.model_device: str | None = None
        """Where the model trains ('cuda', 'cpu'...), as ICPCCallback tells it: decides `resize_on_device=None`."""

    @property
    def modality(self):
        return REGISTRY[self.icpc.check_resolved().model_type].modality

    def __call__(self, features: Sequence[dict[str, Any]], level: float | None = None) -> dict[str, Any]:
        if not features:
            raise ValueError("Cannot collate an empty list of features.")
        modality = self.modality
        context = current_batch()
        if level is None:
            level = self.level if self.level is not None else (context.level if context is not None else 1.0)
        if self.on_device(modality, features):
            batch = modality.collate_deferred(self.processor, features, level, self.icpc)
        else:
            batch = modality.collate(self.processor, features, level, self.icpc)
        with_labels(batch, features)
        check_finite(batch)
        return batch

    def on_device(self, modality: Any, features: Sequence[dict[str, Any]]) -> bool:
        """Whether this batch is left at full size for the patched model to compress on its device."""
        choice = self.resize_on_device
        if choice is False:
            return False
        is_grid = isinstance(modality, GridModality)
        if choice is None:
            return is_grid and self.model_device in ACCELERATORS and modality.arrives_full_size(features, self.icpc)
        if not is_grid:
            raise ValueError(
                f"`resize_on_device=True` applies to image, video and audio inputs; {modality.name} compression "
                "(word pruning) runs in the collator: leave `resize_on_device` at None or False."
            )
        if torch.utils.data.get_worker_info() is None and not has_receiver(self.icpc.model_type):
            raise ValueError(
                f"`resize_on_device=True` leaves batches at full size for a patched {self.icpc.model_type} model to "
                "compress, but no such model is patched in this process: call `icpc_hf.patch_model(model)` first "
                "(a model loaded with `config.icpc` needs it too), or collate with `resize_on_device=False`."
            )
        return True


def collate_layers(collate: Any, depth: int = 6) -> list[Any]:
    """A DataLoader's collate function and what it wraps (LevelledCollate, Trainer's RemoveColumnsCollator, the
    user's collator), outermost first."""
    layers = []
    while collate is not None and len(layers) < depth:
        layers.append(collate)
        collate = getattr(collate, "collate_fn", None) or getattr(collate, "data_collator", None)
    return layers


def collators_in(collate: Any) -> list[ICPCDataCollator]:
    """The ICPCDataCollators inside a DataLoader's collate function."""
    return [layer for layer in collate_layers(collate) if isinstance(layer, ICPCDataCollator)]


def tell_collators(dataloader: Any, model: Any) -> None:
    """Tell the train DataLoader's ICPCDataCollators where the model is (for `resize_on_device=None`)."""
    loader = getattr(dataloader, "base_dataloader", dataloader)
    for collator in collators_in(getattr(loader, "collate_fn", None)):
        collator.model_device = device_type(model)
