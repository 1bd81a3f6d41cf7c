"""One record per modality: everything icpc_hf knows about it, registered once per `config.model_type`.

A "family" is that record (`ModelFamily`, `FAMILIES`, `family_for`): a modality with the model types it serves,
its pipeline and auto class. Patching, the cascade, the pipelines, the Hub export, the model card and calibration
all read these records through `family_for`. This module is the mechanism only; each modality registers itself
at the end of its own module (`image.py`, ...), which also defines its pipeline, so the code served with a model
is its modality's alone (docs/guides/adding-a-model.md). Keep the imports relative, or to torch and transformers: the
Hub export copies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from torch import nn

from .config import ICPCConfig
from .modality import Modality


class Patch(Protocol):
    """What `patch_model` asks of the patch of one model type (implementations: embeddings.py, embeddings_bert.py).

    The patch also holds the facts of its architecture that a modality cannot read alike from every config:
    `geometry` returns them, and `patch_model` adds them to the settings' geometry (e.g. `special_tokens`, the
    CLS and distillation tokens a grid model prepends; `position_offset`, where RoBERTa-style tables start).
    """

    accepts_position_ids: bool

    def geometry(self, model_config: Any) -> dict[str, Any]: ...

    def apply(self, model: nn.Module, icpc: ICPCConfig) -> int: ...

    def remove(self, model: nn.Module) -> None: ...


@dataclass(frozen=True)
class ModelFamily:
    """The models one modality serves, and how each part of icpc_hf presents them."""

    modality: Modality
    patches: Mapping[str, Patch]
    """`config.model_type` -> the patch that gives that architecture's embeddings consistent positions."""
    pipeline_class: type
    """The ICPC pipeline answering this modality, registered under `modality.task`."""
    auto_model: type
    """The Transformers auto class loading a classifier of this modality (pipeline registration, calibration)."""
    pipeline_tag: str
    """The Hub's pipeline tag for the model card."""
    processor_argument: str
    """The keyword the pipeline takes the processor by: `image_processor`, `tokenizer`, `feature_extractor`."""
    classifier_description: str
    """Model card: what the model is, e.g. "image classifier"."""
    compression_description: str
    """Model card: what compression does to an input, e.g. "spectrograms shortened"."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "patches", MappingProxyType(dict(self.patches)))

    @property
    def task(self) -> str:
        """The pipeline task name, e.g. "icpc-image-classification" (the modality defines it)."""
        return self.modality.task


@dataclass(frozen=True)
class Entry:
    """What `REGISTRY` maps one model type to: its family and its own patch."""

    family: ModelFamily
    patch: Patch

    @property
    def modality(self) -> Modality:
        return self.family.modality


REGISTRY: dict[str, Entry] = {}
FAMILIES: list[ModelFamily] = []


def register(family: ModelFamily) -> ModelFamily:
    """Add `family`; a model type registered twice is refused, since the later record would silently win."""
    taken = sorted(set(family.patches) & set(REGISTRY))
    if taken:
        owners = sorted({REGISTRY[model_type].family.modality.name for model_type in taken})
        raise ValueError(
            f"Model type(s) {', '.join(taken)} already registered by the {', '.join(owners)} family: each model type "
            "has one record. Add a new architecture to its family's `patches` once, or give your model its own "
            "`config.model_type`."
        )
    FAMILIES.append(family)
    REGISTRY.update({model_type: Entry(family, patch) for model_type, patch in family.patches.items()})
    return family


def family_for(model_config_or_type: Any) -> ModelFamily:
    """The family serving a model config (by its `model_type`) or a model type given as a string."""
    if isinstance(model_config_or_type, str):
        model_type = model_config_or_type
    else:
        model_type = getattr(model_config_or_type, "model_type", None)
    if model_type not in REGISTRY:
        raise ValueError(
            f"icpc_hf does not support model type {model_type!r}; supported model types: {', '.join(sorted(REGISTRY))}."
        )
    return REGISTRY[model_type].family
