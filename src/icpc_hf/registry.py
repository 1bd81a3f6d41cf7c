"""One record per model family: everything icpc_hf knows about a modality, registered once per `config.model_type`.

Patching, the cascade, the pipelines, the Hub export, the model card and calibration all read these records
through `family_for`, so adding a model is one patch module plus one `register(...)` here
(docs/adding-a-model.md). The Hub export copies this module beside `pipelines.py`: keep its imports relative,
or to torch and transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Protocol

from torch import nn
from transformers import (
    AutoModelForAudioClassification,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoModelForVideoClassification,
)

from .audio import AudioModality
from .config import ICPCConfig
from .image import ImageModality
from .modality import Modality
from .patch_ast import PATCH as AST_PATCH
from .patch_bert import TEXT_PATCHES
from .patch_videomae import PATCH as VIDEOMAE_PATCH
from .patch_vit import PATCH as VIT_PATCH
from .pipelines import (
    ICPCAudioClassificationPipeline,
    ICPCImageClassificationPipeline,
    ICPCTextClassificationPipeline,
    ICPCVideoClassificationPipeline,
)
from .text import TextModality
from .video import VideoModality


class Patch(Protocol):
    """What `patch_model` asks of the patch of one model type (implementations: patch_base.py)."""

    accepts_position_ids: bool

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
            f"icpc_hf does not support model type {model_type!r}; supported model types: "
            f"{', '.join(sorted(REGISTRY))}."
        )
    return REGISTRY[model_type].family


register(ModelFamily(
    modality=ImageModality(),
    patches={"vit": VIT_PATCH},
    pipeline_class=ICPCImageClassificationPipeline,
    auto_model=AutoModelForImageClassification,
    pipeline_tag="image-classification",
    processor_argument="image_processor",
    classifier_description="image classifier",
    compression_description="images resized to a smaller whole number of patches",
))
register(ModelFamily(
    modality=TextModality(),
    patches=TEXT_PATCHES,
    pipeline_class=ICPCTextClassificationPipeline,
    auto_model=AutoModelForSequenceClassification,
    pipeline_tag="text-classification",
    processor_argument="tokenizer",
    classifier_description="text classifier",
    compression_description="insignificant words pruned",
))
register(ModelFamily(
    modality=AudioModality(),
    patches={"audio-spectrogram-transformer": AST_PATCH},
    pipeline_class=ICPCAudioClassificationPipeline,
    auto_model=AutoModelForAudioClassification,
    pipeline_tag="audio-classification",
    processor_argument="feature_extractor",
    classifier_description="audio classifier",
    compression_description="spectrograms shortened",
))
register(ModelFamily(
    modality=VideoModality(),
    patches={"videomae": VIDEOMAE_PATCH},
    pipeline_class=ICPCVideoClassificationPipeline,
    auto_model=AutoModelForVideoClassification,
    pipeline_tag="video-classification",
    processor_argument="image_processor",
    classifier_description="video classifier",
    compression_description="fewer and smaller frames",
))
