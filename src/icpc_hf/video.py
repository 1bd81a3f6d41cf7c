"""Video: spatio-temporal resolution modulation. A level keeps fewer tubelets and smaller frames.

A level gives a (t, h, w) patch grid (`GridModality.grid`). The clip keeps t whole tubelets of `tubelet_size`
consecutive frames: kept tubelet i is the clip's tubelet `axis_positions(S, t, "stride")[i]` (S: tubelets in
the clip), the one whose span holds the centre of the i-th of t equal parts of the clip. Frames are then resized
(antialiased) to h x w patches. For a clip of the model's length this is exactly the tubelet the `stride`
position strategy gives kept tubelet i, so with `stride` every kept tubelet carries the position of the
original tubelet it covers; `crop` and `interpolate` take the same frames and differ only in positions.

The video modality (VideoMAE and ViViT classifiers) in one module: the modality, its pipeline and its registration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForVideoClassification

from .config import ICPCConfig
from .embeddings_videomae import VIDEOMAE
from .embeddings_vivit import VIVIT
from .geometry import Geometry, pair
from .grid import axis_positions, resize_images
from .modality import GridModality, as_tensor
from .pipelines import ICPCPipeline
from .registry import Registration, register
from .serving_inputs import InputLimits, check_raw


def tubelet_frame_index(clip_frames: int, tubelets: int, tubelet_size: int) -> list[int]:
    """Frames of a clip kept for `tubelets` whole tubelets, evenly spread over the clip (see the module doc)."""
    source = clip_frames // tubelet_size
    starts = axis_positions(source, tubelets, "stride")
    return [start * tubelet_size + offset for start in starts for offset in range(tubelet_size)]


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


class VideoModality(GridModality):
    name = "video"
    task = "icpc-video-classification"
    axis_names = ("time", "height", "width")
    default_axes = ("time", "height", "width")
    geometry_class = VideoGeometry

    def geometry(self, model_config: Any) -> VideoGeometry:
        image_size = pair(model_config.image_size)
        tubelet = model_config.tubelet_size
        if isinstance(tubelet, (list, tuple)):  # ViViT: one (frames, height, width) tubelet size
            tubelet_size, patch_size = int(tubelet[0]), pair(tuple(tubelet[1:]))
        else:  # VideoMAE: frames per tubelet, and a patch size
            tubelet_size, patch_size = int(tubelet), pair(model_config.patch_size)
        num_frames = int(model_config.num_frames)
        if image_size[0] % patch_size[0] or image_size[1] % patch_size[1]:
            raise ValueError(f"The model's image size {image_size} is not a multiple of its patch size {patch_size}.")
        if num_frames % tubelet_size:
            raise ValueError(f"The model's {num_frames} frames are not a multiple of its tubelet size {tubelet_size}.")
        return VideoGeometry(
            num_frames=num_frames,
            tubelet_size=tubelet_size,
            image_size=image_size,
            patch_size=patch_size,
            num_channels=int(model_config.num_channels),
            full_grid=(num_frames // tubelet_size, image_size[0] // patch_size[0], image_size[1] // patch_size[1]),
        )

    def shape(self, level: float, icpc: ICPCConfig) -> tuple[int, int, int]:
        """(frames, height, width) of a clip at `level`: its grid times the tubelet and patch sizes."""
        return self.grid_shape(self.grid(level, icpc), icpc)

    def grid_shape(self, grid: Sequence[int], icpc: ICPCConfig) -> tuple[int, int, int]:
        tubelets, rows, columns = grid
        patch = self.geo(icpc).patch_size
        return tubelets * self.geo(icpc).tubelet_size, rows * patch[0], columns * patch[1]

    def compress(self, batch: dict[str, Any], grid: Sequence[int], icpc: ICPCConfig) -> None:
        """Keep the grid's tubelets of (batch, frames, channels, height, width) clips, then resize their frames."""
        frames, height, width = self.grid_shape(grid, icpc)
        sampled = self._sample(batch["pixel_values"].transpose(0, 1), frames, icpc).transpose(0, 1).float()
        batch["pixel_values"] = resize_images(sampled.flatten(0, 1), (height, width)).unflatten(0, sampled.shape[:2])

    def arrives_full_size(self, features: Sequence[dict[str, Any]], icpc: ICPCConfig) -> bool:
        if "pixel_values" not in features[0]:
            return True  # raw clips: the processor brings them to one size, as for a plain Trainer
        geo = self.geo(icpc)
        full = (geo.num_frames, geo.num_channels, *geo.image_size)
        return all(tuple(getattr(f["pixel_values"], "shape", ())[-4:]) == full for f in features)

    # ------------------------------------------------------------------ inputs
    def _clip_tensor(self, value: Any, icpc: ICPCConfig) -> torch.Tensor:
        """One sample's `pixel_values` as a (frames, channels, height, width) tensor, or a ValueError saying why not."""
        if isinstance(value, (list, tuple)):
            frames = [as_tensor(frame) for frame in value]
            sizes = sorted({tuple(frame.shape) for frame in frames})
            if len(sizes) > 1:
                raise ValueError(
                    f"The frames of one clip have different shapes {sizes}: pass the raw clip under `video` so the "
                    "video/image processor resizes every frame, or resize the frames to one size first."
                )
            value = torch.stack(frames)
        clip = as_tensor(value)
        if clip.dim() == 5 and clip.shape[0] == 1:
            clip = clip[0]
        channels = self.geo(icpc).num_channels
        if clip.dim() != 4 or clip.shape[1] != channels:
            hint = ""
            if clip.dim() == 4 and clip.shape[-1] == channels:
                hint = (
                    " This looks channel-last: use `pixel_values.permute(0, 3, 1, 2)`, or pass the raw clip under "
                    "`video`."
                )
            raise ValueError(
                f"Expected `pixel_values` of shape (frames, channels={channels}, height, width) per clip, got "
                f"{tuple(clip.shape)}.{hint}"
            )
        return clip

    def clips(self, processor: Any, features: Sequence[dict[str, Any]], icpc: ICPCConfig) -> list[torch.Tensor]:
        """The clips of `features` as (frames, channels, height, width) tensors."""
        if "pixel_values" in features[0]:
            return [self._clip_tensor(f["pixel_values"], icpc) for f in features]
        if "video" in features[0]:
            if processor is None:
                raise ValueError(
                    "Features hold raw `video` clips but the collator has no video/image processor to convert them: "
                    "pass the model's VideoMAEImageProcessor (or VideoMAEVideoProcessor) to ICPCDataCollator."
                )
            return [self._clip_tensor(self.process(processor, check_raw(f["video"])), icpc) for f in features]
        raise ValueError(
            f"Video features need `pixel_values` (frames x channels x height x width, from the video/image processor) "
            f"or a raw clip under `video`; got keys {sorted(features[0])}."
        )

    @staticmethod
    def process(processor: Any, clip: Any) -> torch.Tensor:
        """One raw clip (a list of frames, or an array of frames, channel-first or channel-last) through the
        processor."""
        return processor(clip, return_tensors="pt")["pixel_values"][0]

    def _sample(self, clip: torch.Tensor, frames: int, icpc: ICPCConfig) -> torch.Tensor:
        """The clip's frames kept at a level of `frames` frames, with a clear error for clips that can't give them."""
        tubelet_size = self.geo(icpc).tubelet_size
        count = clip.shape[0]
        if count % tubelet_size:
            raise ValueError(
                f"A clip of {count} frames is not a whole number of tubelets of {tubelet_size} frames: trim or pad "
                f"clips to a multiple of {tubelet_size} (the model takes {self.geo(icpc).num_frames})."
            )
        if count < frames:
            raise ValueError(
                f"A clip of {count} frames is shorter than the {frames} frames this level needs: give clips of at "
                f"least the model's {self.geo(icpc).num_frames} frames, or use only levels of at most {count} frames."
            )
        if count == frames:
            return clip
        return clip[tubelet_frame_index(count, frames // tubelet_size, tubelet_size)]

    def collate(self, processor: Any, features: Sequence[dict[str, Any]], level: float, icpc: ICPCConfig) -> dict:
        clips = self.clips(processor, features, icpc)
        frames, height, width = self.shape(level, icpc)
        too_small = [tuple(clip.shape[-2:]) for clip in clips if clip.shape[-2] < height or clip.shape[-1] < width]
        if too_small:
            raise ValueError(
                f"A clip with {too_small[0][0]}x{too_small[0][1]} frames is smaller than the level's {height}x{width}: "
                f"resize frames to the model's {self.geo(icpc).image_size} with its video/image processor "
                "first."
            )
        if all(clip.shape == clips[0].shape for clip in clips):  # the usual batch: one frame index for all clips
            batch = {"pixel_values": torch.stack(clips)}
            self.compress(batch, self.grid(level, icpc), icpc)
            pixel_values = batch["pixel_values"]
        else:
            sampled = [self._sample(clip, frames, icpc) for clip in clips]
            pixel_values = torch.stack([resize_images(clip.float(), (height, width)) for clip in sampled])
        return {"pixel_values": pixel_values}

    # ------------------------------------------------------------------ costs
    def tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        """t * h * w tubelet patches per clip, plus the CLS token of models that have one (ViViT; not VideoMAE)."""
        batch_size, frames, _, height, width = batch["pixel_values"].shape
        patch = self.geo(icpc).patch_size
        count = (frames // self.geo(icpc).tubelet_size) * (height // patch[0]) * (width // patch[1])
        return self.sample_tokens(count, batch_size, icpc)

    def full_tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        tubelets, rows, columns = self.geo(icpc).full_grid
        return self.sample_tokens(tubelets * rows * columns, batch["pixel_values"].shape[0], icpc)

    # ------------------------------------------------------------------ pipeline
    def prepare(self, processor: Any, raw: Any, icpc: ICPCConfig, limits: InputLimits | None = None) -> dict:
        """A clip (frames, or a path or URL that Transformers' `load_video` reads: it takes no timeout, and its fetch
        gives up after 5 s without an answer), after the side and NaN checks."""
        if isinstance(raw, str):
            from transformers.video_utils import load_video

            raw, _ = load_video(raw)
        if processor is None:
            raise ValueError("The pipeline has no video/image processor to read clips with: pass `image_processor=`.")
        clip = check_raw(raw, (limits or InputLimits()).max_side)
        return {"pixel_values": self._clip_tensor(self.process(processor, clip), icpc)}

    def processor_of(self, pipeline: Any) -> Any:
        """The video processor when Transformers loaded one (it needs torchvision), else the image processor."""
        return getattr(pipeline, "video_processor", None) or pipeline.image_processor


class ICPCVideoClassificationPipeline(ICPCPipeline):
    """VideoMAE ships a video processor (needs torchvision) and an image processor: load whichever is there,
    as Transformers' own video-classification pipeline does; `VideoModality.processor_of` prefers the former."""

    input_limits = ("max_side",)
    _load_processor = False
    _load_image_processor = None
    _load_video_processor = None
    _load_feature_extractor = False
    _load_tokenizer = False


REGISTRATION = register(
    Registration(
        modality=VideoModality(),
        architectures={"videomae": VIDEOMAE, "vivit": VIVIT},
        pipeline_class=ICPCVideoClassificationPipeline,
        auto_model=AutoModelForVideoClassification,
        pipeline_tag="video-classification",
        processor_argument="image_processor",
        classifier_description="video classifier",
        compression_description="fewer and smaller frames",
    )
)
