"""One record per modality: everything icpc_hf knows about it, registered once per `config.model_type`.

A modality's record is its `Registration` (all of them: `REGISTRATIONS`; one model's: `registration_for`): the
modality with the architectures it serves, its pipeline and auto class. Patching, the cascade, the pipelines, the Hub
export, the model card and calibration all read these records through `registration_for`. This module is the mechanism only; each modality registers itself
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


class Architecture(Protocol):
    """What `patch_model` asks of one model type's embeddings (implementations: `SwappedEmbeddings` in
    embeddings.py, `TextPositions` in embeddings_bert.py).

    It also holds the facts of its architecture that a modality cannot read alike from every config: `geometry`
    returns them, and `patch_model` adds them to the settings' geometry (e.g. `special_tokens`, the CLS and
    distillation tokens a grid model prepends; `position_offset`, where RoBERTa-style tables start).
    """

    accepts_position_ids: bool

    def geometry(self, model_config: Any) -> dict[str, Any]: ...

    def position_strategy(self, model: nn.Module) -> str: ...

    def apply(self, model: nn.Module, icpc: ICPCConfig) -> int: ...

    def remove(self, model: nn.Module) -> None: ...


@dataclass(frozen=True)
class Registration:
    """The models one modality serves, and how each part of icpc_hf presents them."""

    modality: Modality
    architectures: Mapping[str, Architecture]
    """`config.model_type` -> what gives that architecture's embeddings consistent positions."""
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
        object.__setattr__(self, "architectures", MappingProxyType(dict(self.architectures)))

    @property
    def task(self) -> str:
        """The pipeline task name, e.g. "icpc-image-classification" (the modality defines it)."""
        return self.modality.task


@dataclass(frozen=True)
class Entry:
    """What `REGISTRY` maps one model type to: its registration and its own architecture."""

    registration: Registration
    architecture: Architecture

    @property
    def modality(self) -> Modality:
        return self.registration.modality


REGISTRY: dict[str, Entry] = {}
REGISTRATIONS: list[Registration] = []


def register(registration: Registration) -> Registration:
    """Add `registration`; a model type registered twice is refused, since the later record would silently win."""
    taken = sorted(set(registration.architectures) & set(REGISTRY))
    if taken:
        owners = sorted({REGISTRY[model_type].registration.modality.name for model_type in taken})
        raise ValueError(
            f"Model type(s) {', '.join(taken)} already registered by the {', '.join(owners)} modality: each model type "
            "has one record. Add a new architecture to its modality's `architectures` once, or give your model its own "
            "`config.model_type`."
        )
    REGISTRATIONS.append(registration)
    REGISTRY.update({model_type: Entry(registration, arch) for model_type, arch in registration.architectures.items()})
    return registration


def registration_for(model_config_or_type: Any) -> Registration:
    """The registration of the modality serving a model config (by its `model_type`) or a model type given as a string."""
    if isinstance(model_config_or_type, str):
        model_type = model_config_or_type
    else:
        model_type = getattr(model_config_or_type, "model_type", None)
    if model_type not in REGISTRY:
        raise ValueError(
            f"icpc_hf does not support model type {model_type!r}; supported model types: {', '.join(sorted(REGISTRY))}."
        )
    return REGISTRY[model_type].registration
