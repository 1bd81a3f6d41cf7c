"""ICPCDataCollator: the features a user already has in, a batch compressed to its level out."""

from __future__ import annotations

from typing import Any, Sequence

from .config import ICPCConfig, as_icpc_config
from .modality import check_finite
from .registry import REGISTRY
from .schedule import current_batch


class ICPCDataCollator:
    """Collate features at the level the ICPC sampler chose for the batch (uncompressed otherwise).

    `processor` is the model's image processor, tokenizer, feature extractor or video processor; `icpc` the
    settings (an ICPCConfig, or `model.config.icpc`). Inside a Trainer with `ICPCCallback`, or a DataLoader
    whose collate function is `LevelPlan(icpc, num_epochs).bind(collator)`, each training batch is compressed to
    its drawn level (in the main process or a DataLoader worker alike); anywhere else (evaluation, prediction) it
    is collated uncompressed, or at `level` when one is given.
    """

    def __init__(self, processor: Any, icpc: ICPCConfig | dict | None = None, level: float | None = None):
        self.processor = processor
        self.icpc = as_icpc_config(icpc)
        if level is not None and not 0.0 < level <= 1.0:
            raise ValueError(f"`level` must be in (0, 1], got {level!r}.")
        self.level = level

    @property
    def modality(self):
        if not self.icpc.is_resolved:
            raise ValueError(
                "The ICPC settings are not resolved for a model yet: call `patch_model(model, icpc)` with the same "
                "ICPCConfig before collating, or pass `model.config.icpc`."
            )
        return REGISTRY[self.icpc.model_type].modality

    def __call__(self, features: Sequence[dict[str, Any]], level: float | None = None) -> dict[str, Any]:
        if not features:
            raise ValueError("Cannot collate an empty list of features.")
        modality = self.modality
        context = current_batch()
        if level is None:
            level = self.level if self.level is not None else (context.level if context is not None else 1.0)
        batch = modality.collate(self.processor, features, level, self.icpc)
        check_finite(batch)
        return batch
