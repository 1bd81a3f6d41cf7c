"""Images: resolution modulation. A level shrinks the image side to a whole number of patches.

The image modality (ViT, DeiT and DINOv2 classifiers) in one module: the modality, its pipeline and its registration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForImageClassification

from .config import ICPCConfig
from .embeddings_dinov2 import DINOV2
from .embeddings_vit import DEIT, VIT
from .geometry import Geometry, pair
from .grid import resize_images
from .modality import GridModality, as_tensor
from .pipelines import ICPCPipeline
from .registry import Registration, register
from .serving_inputs import MAX_SIDE, InputLimits, check_raw, each

PIL_MODES = {1: "L", 3: "RGB"}
"""The PIL mode a raw image is converted to for a model of each channel count."""


def conform_image(image: Any, channels: int, max_side: int = MAX_SIDE) -> Any:
    """A raw image with the model's channel count, or a ValueError before the image processor fails obscurely.

    PIL images are converted as `do_convert_rgb` does (transparency composited onto white, grey repeated to RGB,
    RGB to luminance for a 1-channel model), which keeps what the image shows. Arrays and tensors are not
    guessed at: one with another channel count, or with NaN or inf, is refused with the fix.
    """
    from PIL import Image

    check_raw(image, max_side)
    if isinstance(image, Image.Image):
        mode = PIL_MODES.get(channels)
        if mode is None or image.mode == mode:
            return image
        if "A" in image.getbands() or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        return image.convert(mode)
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) == 2:
        found = 1
    elif len(shape) == 3:
        found = shape[0] if shape[0] in (1, 3, 4) else shape[-1]
    else:
        return image  # lists, paths and the like: the image processor says what it takes
    if found != channels:
        raise ValueError(
            f"An image array of shape {shape} has {found} channel(s) but the model takes {channels}: convert it "
            f"first (e.g. `PIL.Image.fromarray(array).convert({PIL_MODES.get(channels, 'RGB')!r})`), or pass a PIL "
            "image, which the collator converts."
        )
    return image


@dataclass(frozen=True, kw_only=True)
class ImageGeometry(Geometry):
    image_size: tuple[int, int]
    patch_size: tuple[int, int]
    num_channels: int
    full_grid: tuple[int, int]
    """Patches per (height, width) at full size."""
    special_tokens: int = 1
    """Tokens before the patches: ViT's CLS; DeiT's CLS and distillation token."""


class ImageModality(GridModality):
    name = "image"
    task = "icpc-image-classification"
    axis_names = ("height", "width")
    default_axes = ("height", "width")
    geometry_class = ImageGeometry

    def geometry(self, model_config: Any) -> ImageGeometry:
        image_size = pair(model_config.image_size)
        patch_size = pair(model_config.patch_size)
        if image_size[0] % patch_size[0] or image_size[1] % patch_size[1]:
            raise ValueError(f"The model's image size {image_size} is not a multiple of its patch size {patch_size}.")
        return ImageGeometry(
            image_size=image_size,
            patch_size=patch_size,
            num_channels=int(model_config.num_channels),
            full_grid=(image_size[0] // patch_size[0], image_size[1] // patch_size[1]),
        )

    def size(self, level: float, icpc: ICPCConfig) -> tuple[int, int]:
        """Pixel size of a level: its grid times the patch size."""
        return self.grid_size(self.grid(level, icpc), icpc)

    def grid_size(self, grid: Sequence[int], icpc: ICPCConfig) -> tuple[int, int]:
        patch = self.geo(icpc).patch_size
        return grid[0] * patch[0], grid[1] * patch[1]

    def compress(self, batch: dict[str, Any], grid: Sequence[int], icpc: ICPCConfig) -> None:
        batch["pixel_values"] = resize_images(batch["pixel_values"], self.grid_size(grid, icpc))

    def arrives_full_size(self, features: Sequence[dict[str, Any]], icpc: ICPCConfig) -> bool:
        if "pixel_values" not in features[0]:
            return True  # raw images: the image processor brings them to one size, as for a plain Trainer
        full = tuple(self.geo(icpc).image_size)
        return all(tuple(getattr(f["pixel_values"], "shape", ())[-2:]) == full for f in features)

    def pixel_values(self, processor: Any, features: Sequence[dict[str, Any]], icpc: ICPCConfig) -> list[torch.Tensor]:
        if "pixel_values" in features[0]:
            images = [as_tensor(f["pixel_values"]) for f in features]
        elif "image" in features[0]:
            if processor is None:
                raise ValueError("Features hold raw `image`s but the collator has no image processor to convert them.")
            channels = self.geo(icpc).num_channels
            raw = [conform_image(f["image"], channels) for f in features]
            images = list(processor(images=raw, return_tensors="pt")["pixel_values"])
        else:
            raise ValueError(
                f"Image features need `pixel_values` (from the image processor) or a raw `image`; got keys "
                f"{sorted(features[0])}."
            )
        channels = self.geo(icpc).num_channels
        for image in images:
            if image.dim() != 3 or image.shape[0] != channels:
                raise ValueError(
                    f"Expected images of shape (channels={channels}, height, width), got {tuple(image.shape)}. "
                    "Convert images to the model's channel count (e.g. `image.convert('RGB')`) and use "
                    "channels-first pixel values, as the image processor returns them."
                )
        return images

    def collate(self, processor: Any, features: Sequence[dict[str, Any]], level: float, icpc: ICPCConfig) -> dict:
        images = self.pixel_values(processor, features, icpc)
        target = self.size(level, icpc)
        smallest = min(min(image.shape[-2:]) for image in images)
        if smallest < min(target):
            raise ValueError(
                f"An image of {smallest} pixels is smaller than the level's {target[0]}x{target[1]}: resize images to "
                f"the model's {self.geo(icpc).image_size} with its image processor first."
            )
        if all(image.shape == images[0].shape for image in images):
            pixel_values = resize_images(torch.stack(images).float(), target)
        else:
            pixel_values = torch.cat([resize_images(image[None].float(), target) for image in images])
        return {"pixel_values": pixel_values}

    def tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        patch = self.geo(icpc).patch_size
        height, width = batch["pixel_values"].shape[-2:]
        return self.sample_tokens((height // patch[0]) * (width // patch[1]), batch["pixel_values"].shape[0], icpc)

    def full_tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        grid = self.geo(icpc).full_grid
        return self.sample_tokens(grid[0] * grid[1], batch["pixel_values"].shape[0], icpc)

    def prepare(self, processor: Any, raw: Any, icpc: ICPCConfig, limits: InputLimits | None = None) -> dict:
        return self.prepare_many(processor, [raw], icpc, limits)[0]

    def prepare_many(
        self, processor: Any, raws: Sequence[Any], icpc: ICPCConfig, limits: InputLimits | None = None
    ) -> list[dict[str, Any]]:
        """Paths and URLs loaded as Transformers loads them (URLs with `limits.timeout`), one processor call."""
        from transformers.image_utils import load_image

        limits, channels = limits or InputLimits(), self.geo(icpc).num_channels

        def conform(raw: Any) -> Any:
            return conform_image(
                load_image(raw, timeout=limits.timeout) if isinstance(raw, str) else raw, channels, limits.max_side
            )

        images = each(raws, conform)
        return [{"pixel_values": pixels} for pixels in processor(images=images, return_tensors="pt")["pixel_values"]]

    def processor_of(self, pipeline: Any) -> Any:
        return pipeline.image_processor


class ICPCImageClassificationPipeline(ICPCPipeline):
    input_limits = ("max_side", "timeout")
    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False


REGISTRATION = register(
    Registration(
        modality=ImageModality(),
        architectures={"vit": VIT, "deit": DEIT, "dinov2": DINOV2},
        pipeline_class=ICPCImageClassificationPipeline,
        auto_model=AutoModelForImageClassification,
        pipeline_tag="image-classification",
        processor_argument="image_processor",
        classifier_description="image classifier",
        compression_description="images resized to a smaller whole number of patches",
    )
)
