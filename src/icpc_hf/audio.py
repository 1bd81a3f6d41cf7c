"""Audio: spectrogram size modulation for the Audio Spectrogram Transformer (AST). A level shrinks the log-mel spectrogram along time (and, with `axes=["time", "frequency"]`, along the mel bins)
to the smallest size that still yields the level's grid of overlapping patches, so fewer patches reach the model.
With `trim_padding`, the padding frames that the feature extractor appends after a short clip are dropped too
(whole patches, after the batch's longest clip) and an attention mask hides from each clip the padding patches
left in its batch, so a one-second clip costs what one second costs, whatever it is batched with. One module:
the modality, its pipeline and its registration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForAudioClassification

from .config import ICPCConfig
from .embeddings_ast import AST
from .geometry import Geometry
from .grid import conv_input_size, conv_output_size
from .modality import GRID_KEY, GridModality, as_tensor, grid_marker
from .pipelines import ICPCPipeline
from .registry import Registration, register
from .serving_inputs import MAX_SECONDS, InputLimits
from .wav import mono_waveform


def resize_spectrograms(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of (batch, frames, mel bins) spectrograms; identity at the same size."""
    if tuple(values.shape[-2:]) == tuple(size):
        return values
    return F.interpolate(values[:, None], size=size, mode="bilinear", antialias=True, align_corners=False)[:, 0]


def padding_value(processor: Any) -> float | None:
    """The value of a padding frame in the extractor's output: zeros, normalised like every frame (None: unknown)."""
    if processor is None or not hasattr(processor, "max_length"):
        return None
    zeros = np.zeros(1, dtype=np.float32)
    if getattr(processor, "do_normalize", False):
        zeros = processor.normalize(zeros)
    return float(np.asarray(zeros, dtype=np.float32)[0])


def content_frames(spectrograms: torch.Tensor, pad: float) -> torch.Tensor:
    """Per spectrogram, the frames up to the last one that is not exact padding."""
    is_content = (spectrograms != torch.tensor(pad, dtype=spectrograms.dtype)).any(-1)
    positions = torch.arange(1, spectrograms.shape[1] + 1)
    return (is_content * positions).amax(-1)


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


class AudioModality(GridModality):
    """Log-mel spectrograms cut into overlapping (frequency, time) patches; levels shrink time by default."""

    name = "audio"
    task = "icpc-audio-classification"
    axis_names = ("frequency", "time")
    default_axes = ("time",)
    geometry_class = AudioGeometry
    input_key = "input_values"

    def geometry(self, model_config: Any) -> AudioGeometry:
        patch = model_config.patch_size
        if isinstance(patch, (list, tuple)):
            if len(set(patch)) != 1:
                raise ValueError(f"AST patches are square; got patch_size {patch}.")
            patch = patch[0]
        sizes = {
            "num_mel_bins": int(model_config.num_mel_bins),
            "max_length": int(model_config.max_length),
            "patch_size": int(patch),
            "frequency_stride": int(model_config.frequency_stride),
            "time_stride": int(model_config.time_stride),
        }
        full_grid = [
            conv_output_size(sizes["num_mel_bins"], sizes["patch_size"], sizes["frequency_stride"]),
            conv_output_size(sizes["max_length"], sizes["patch_size"], sizes["time_stride"]),
        ]
        if min(full_grid) < 1:
            raise ValueError(
                f"The model's spectrogram ({sizes['max_length']} frames x {sizes['num_mel_bins']} mel bins) is smaller "
                f"than one {sizes['patch_size']}-patch: fix the ASTConfig."
            )
        return AudioGeometry(**sizes, full_grid=tuple(full_grid))

    def resolve(self, icpc: ICPCConfig, model_config: Any) -> None:
        super().resolve(icpc, model_config)
        if icpc.trim_padding and icpc.position_strategy != "crop":
            raise ValueError(
                "`trim_padding=True` needs `position_strategy='crop'`: a trimmed clip is a crop of the padded one, so "
                f"its patches keep their leading positions; {icpc.position_strategy!r} would stretch them over the "
                "whole time table."
            )

    # ------------------------------------------------------------------ sizes
    def input_size(self, grid: Sequence[int], icpc: ICPCConfig) -> tuple[int, int]:
        """(frames, mel bins) of a level's spectrogram: the smallest that yields `grid`; the model's own at full."""
        geo = self.geo(icpc)
        full_bins, full_time = geo.full_grid
        patch = geo.patch_size
        bins = geo.num_mel_bins if grid[0] == full_bins else conv_input_size(grid[0], patch, geo.frequency_stride)
        frames = geo.max_length if grid[1] == full_time else conv_input_size(grid[1], patch, geo.time_stride)
        return frames, bins

    def grid_of(self, input_values: torch.Tensor, icpc: ICPCConfig) -> tuple[int, int]:
        geo = self.geo(icpc)
        frames, bins = input_values.shape[-2:]
        return (
            conv_output_size(bins, geo.patch_size, geo.frequency_stride),
            conv_output_size(frames, geo.patch_size, geo.time_stride),
        )

    # ------------------------------------------------------------------ features
    def spectrograms(self, processor: Any, features: Sequence[dict[str, Any]], icpc: ICPCConfig) -> torch.Tensor:
        """Full-size (batch, max_length, mel bins) spectrograms from `input_values` or raw `audio`."""
        geo = self.geo(icpc)
        if "input_values" in features[0]:
            values = [as_tensor(f["input_values"]).float() for f in features]
        elif "audio" in features[0]:
            values = list(self.extract(processor, [f["audio"] for f in features], icpc))
        else:
            raise ValueError(
                "Audio features need `input_values` (from ASTFeatureExtractor) or raw `audio` "
                f"({{'array', 'sampling_rate'}}); got keys {sorted(features[0])}."
            )
        fitted = []
        for value in values:
            if value.dim() != 2 or value.shape[-1] != geo.num_mel_bins:
                raise ValueError(
                    f"Expected one spectrogram of shape (frames, mel bins={geo.num_mel_bins}) per sample, got "
                    f"{tuple(value.shape)}: use ASTFeatureExtractor(num_mel_bins={geo.num_mel_bins}) and take "
                    "`input_values[i]` per sample."
                )
            fitted.append(self._fit_length(value, processor, geo.max_length))
        return torch.stack(fitted)

    @staticmethod
    def _fit_length(value: torch.Tensor, processor: Any, max_length: int) -> torch.Tensor:
        """Truncate longer spectrograms as the extractor does; pad shorter ones with its padding frames."""
        frames = value.shape[0]
        if frames >= max_length:
            return value[:max_length]
        pad = padding_value(processor)
        if pad is None:
            raise ValueError(
                f"A spectrogram of {frames} frames is shorter than the model's max_length {max_length}: extract it "
                f"with ASTFeatureExtractor(max_length={max_length}), or pass the feature extractor to the collator."
            )
        return torch.cat([value, value.new_full((max_length - frames, value.shape[1]), pad)])

    def extract(
        self, processor: Any, clips: Sequence[Any], icpc: ICPCConfig, max_seconds: float = MAX_SECONDS
    ) -> torch.Tensor:
        """Raw clips through the feature extractor, after mono, sampling-rate and length checks."""
        if processor is None or not callable(processor):
            raise ValueError("Features hold raw `audio` but no feature extractor was given to make spectrograms.")
        bins = self.geo(icpc).num_mel_bins
        if getattr(processor, "num_mel_bins", bins) != bins:
            raise ValueError(
                f"The feature extractor makes {processor.num_mel_bins} mel bins but the model takes {bins}: use "
                f"ASTFeatureExtractor(num_mel_bins={bins})."
            )
        rate = int(processor.sampling_rate)
        waveforms = [mono_waveform(clip, rate, max_seconds) for clip in clips]
        return processor(waveforms, sampling_rate=rate, return_tensors="pt")["input_values"].float()

    # ------------------------------------------------------------------ batches
    def content_time_patches(
        self, spectrograms: torch.Tensor, processor: Any, frames: int, time_patches: int, icpc: ICPCConfig
    ) -> torch.Tensor:
        """Per clip, the time patches (of a level's `frames`-long spectrogram) needed to cover its audio."""
        pad = padding_value(processor)
        if pad is None:
            raise ValueError(
                "`trim_padding` recognises padding frames through the feature extractor: pass the ASTFeatureExtractor "
                "to the collator (or pipeline)."
            )
        geo = self.geo(icpc)
        scaled = torch.ceil(content_frames(spectrograms, pad) * frames / geo.max_length)
        needed = torch.ceil((scaled - geo.patch_size).clamp(min=0) / geo.time_stride).long() + 1
        return needed.clamp(max=time_patches)

    def collate(self, processor: Any, features: Sequence[dict[str, Any]], level: float, icpc: ICPCConfig) -> dict:
        """A level's batch; with `trim_padding`, cut after the longest clip's last patch, and an attention mask
        hiding from each clip the padding patches it does not need, so its answer does not depend on its batch."""
        batch, grid = self.full_size_batch(processor, features, level, icpc)
        self.compress(batch, grid, icpc)
        return batch

    def full_size_batch(
        self, processor: Any, features: Sequence[dict[str, Any]], level: float, icpc: ICPCConfig
    ) -> tuple[dict, tuple[int, ...]]:
        """The features' full-size spectrograms and, with `trim_padding`, the level's attention mask; the level's grid."""
        spectrograms = self.spectrograms(processor, features, icpc)
        grid = self.grid(level, icpc)
        batch = self.padding_mask(spectrograms, processor, grid, icpc)
        batch["input_values"] = spectrograms
        return batch, grid

    def padding_mask(self, spectrograms: torch.Tensor, processor: Any, grid: Sequence[int], icpc: ICPCConfig) -> dict:
        """With `trim_padding`, the attention mask of a level's batch (its width sets the time patches kept)."""
        if not icpc.trim_padding:
            return {}
        frames, _ = self.input_size(grid, icpc)
        needed = self.content_time_patches(spectrograms, processor, frames, grid[1], icpc)
        kept = int(needed.max())
        patch_mask = (torch.arange(kept) < needed[:, None]).repeat(1, grid[0])
        special = self.geo(icpc).special_tokens
        return {"attention_mask": torch.cat([patch_mask.new_ones(len(needed), special), patch_mask], dim=1).long()}

    def kept_time_patches(self, batch: dict[str, Any], grid: Sequence[int], icpc: ICPCConfig) -> int:
        """Time patches a batch keeps at `grid`: all of them, or with `trim_padding` what its attention mask covers."""
        mask = batch.get("attention_mask")
        if not icpc.trim_padding or mask is None:
            return grid[1]
        return (mask.shape[1] - self.geo(icpc).special_tokens) // grid[0]

    def compress(self, batch: dict[str, Any], grid: Sequence[int], icpc: ICPCConfig) -> None:
        frames, bins = self.input_size(grid, icpc)
        values = resize_spectrograms(batch["input_values"], (frames, bins))
        kept = self.kept_time_patches(batch, grid, icpc)
        if kept < grid[1]:
            geo = self.geo(icpc)
            values = values[:, : conv_input_size(kept, geo.patch_size, geo.time_stride)].contiguous()
        batch["input_values"] = values

    def arrives_full_size(self, features: Sequence[dict[str, Any]], icpc: ICPCConfig) -> bool:
        return True  # spectrograms are cut or padded to the model's length, never resampled, before a level

    def collate_deferred(
        self, processor: Any, features: Sequence[dict[str, Any]], level: float, icpc: ICPCConfig
    ) -> dict:
        """Full-size spectrograms with the level's grid and, with `trim_padding`, its attention mask (cheap here)."""
        batch, grid = self.full_size_batch(processor, features, level, icpc)
        if tuple(grid) != tuple(self.geo(icpc).full_grid) or self.kept_time_patches(batch, grid, icpc) < grid[1]:
            batch[GRID_KEY] = grid_marker(len(batch["input_values"]), grid)
        return batch

    def grid_tokens(self, batch: dict[str, Any], grid: Sequence[int], icpc: ICPCConfig) -> torch.Tensor:
        return self.sample_tokens(grid[0] * self.kept_time_patches(batch, grid, icpc), len(batch["input_values"]), icpc)

    def tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        frequency, time = self.grid_of(batch["input_values"], icpc)
        return self.sample_tokens(frequency * time, batch["input_values"].shape[0], icpc)

    def full_tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        frequency, time = self.geo(icpc).full_grid
        return self.sample_tokens(frequency * time, batch["input_values"].shape[0], icpc)

    # ------------------------------------------------------------------ pipeline
    def prepare(self, processor: Any, raw: Any, icpc: ICPCConfig, limits: InputLimits | None = None) -> dict:
        if isinstance(raw, dict) and "input_values" in raw:
            return {"input_values": self.spectrograms(processor, [raw], icpc)[0]}
        return {"input_values": self.extract(processor, [raw], icpc, (limits or InputLimits()).max_seconds)[0]}

    def processor_of(self, pipeline: Any) -> Any:
        return pipeline.feature_extractor


__all__ = ["AudioModality", "content_frames", "resize_spectrograms"]


class ICPCAudioClassificationPipeline(ICPCPipeline):
    input_limits = ("max_seconds",)
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False


REGISTRATION = register(
    Registration(
        modality=AudioModality(),
        architectures={"audio-spectrogram-transformer": AST},
        pipeline_class=ICPCAudioClassificationPipeline,
        auto_model=AutoModelForAudioClassification,
        pipeline_tag="audio-classification",
        processor_argument="feature_extractor",
        classifier_description="audio classifier",
        compression_description="spectrograms shortened",
    )
)
