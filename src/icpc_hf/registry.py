"""Which compression logic and which embeddings patch serve each `config.model_type`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .patch_vit import PATCH as VIT_PATCH
from .patch_bert import TEXT_PATCHES
from .text import TextModality
from .patch_videomae import PATCH as VIDEOMAE_PATCH
from .video import VideoModality
from .image import ImageModality
from .modality import Modality
from .audio import AudioModality
from .patch_ast import PATCH as AST_PATCH


@dataclass(frozen=True)
class Entry:
    modality: Modality
    patch: Any


IMAGE = ImageModality()

REGISTRY: dict[str, Entry] = {
    **{model_type: Entry(TextModality(), patch) for model_type, patch in TEXT_PATCHES.items()},
    "vit": Entry(IMAGE, VIT_PATCH),
    "audio-spectrogram-transformer": Entry(AudioModality(), AST_PATCH),
    "videomae": Entry(VideoModality(), VIDEOMAE_PATCH),
}


def entry_for(model_config: Any) -> Entry:
    model_type = getattr(model_config, "model_type", None)
    if model_type not in REGISTRY:
        raise ValueError(
            f"icpc_hf does not support model type {model_type!r}; supported model types: "
            f"{', '.join(sorted(REGISTRY))}."
        )
    return REGISTRY[model_type]


def modality_for(model_config: Any) -> Modality:
    return entry_for(model_config).modality
