"""A model's input sizes, one dataclass per modality.

`patch_model` reads them from the model's config (the modality's `geometry`, plus the facts its patch knows, such
as special tokens) and keeps them in the ICPC settings as a plain dict, so they save with `config.json`; the
modality reads them back typed (`Modality.geo`). Settings saved by an older version may lack a field added
since: the defaults below are what those versions assumed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


def pair(value: Any) -> tuple[int, int]:
    """A (height, width) size from a config value that is one int or a pair."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


@dataclass(frozen=True, kw_only=True)
class Geometry:
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Geometry:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True, kw_only=True)
class ImageGeometry(Geometry):
    image_size: tuple[int, int]
    patch_size: tuple[int, int]
    num_channels: int
    full_grid: tuple[int, int]
    """Patches per (height, width) at full size."""
    special_tokens: int = 1
    """Tokens before the patches: ViT's CLS; DeiT's CLS and distillation token."""


@dataclass(frozen=True, kw_only=True)
class VideoGeometry(Geometry):
    num_frames: int
    tubelet_size: int
    """Frames per tubelet."""
    image_size: tuple[int, int]
    patch_size: tuple[int, int]
    num_channels: int
    full_grid: tuple[int, int, int]
    """Tubelets per (time, height, width) at full size."""
    special_tokens: int = 0
    """VideoMAE has none; ViViT a CLS token."""


@dataclass(frozen=True, kw_only=True)
class AudioGeometry(Geometry):
    num_mel_bins: int
    max_length: int
    """Spectrogram frames at full size."""
    patch_size: int
    frequency_stride: int
    time_stride: int
    full_grid: tuple[int, int]
    """Patches per (frequency, time) at full size."""
    special_tokens: int = 2
    """AST's CLS and distillation token."""


@dataclass(frozen=True, kw_only=True)
class TextGeometry(Geometry):
    max_position_embeddings: int
    vocab_size: int
    pad_token_id: int | None
    type_vocab_size: int
    """0 for models without token types (DistilBERT, ModernBERT)."""
    position_offset: int = 0
    """Where positions start: `pad_token_id + 1` for RoBERTa-style tables, 0 otherwise (set by the patch)."""

    @property
    def max_tokens(self) -> int:
        """The longest text the positions allow."""
        return self.max_position_embeddings - self.position_offset
