"""What a modality provides to the collator, the callback, the cascade and the pipeline.

A modality knows how to turn the features a user already has into a batch at a given compression level, and
how many tokens that batch costs; labels, and the checks of a user's training features, are the collator's
(training/collator.py). The model side lives in one embeddings module per architecture; `registry.py` pairs the two
by `config.model_type`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from .config import ICPCConfig
from .geometry import Geometry
from .grid import default_levels, scaled_grid, snap_levels
from .serving_inputs import InputLimits, each


def as_tensor(value: Any) -> torch.Tensor:
    """`value` as a tensor; a string or other non-numeric value gets an error in icpc_hf's words, not torch's."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError("a string")
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"Expected numbers (a tensor, array or list), got {type(value).__name__} {str(value)[:40]!r}: give "
            "processed features (`input_ids`, `pixel_values`, `input_values`) as numbers, or put raw inputs under "
            "`text`, `image`, `audio` or `video` for the collator to process."
        ) from error


DEFAULT_SCHEDULE = "progressive"
"""`ICPCConfig(schedule=None)`'s schedule for grids, and for settings not resolved for a model yet."""


class Modality:
    """Compression logic of one input kind. Subclasses fill the class attributes and the methods below."""

    name: str = ""
    task: str = ""
    pads_to_the_longest: bool = False
    """A batch pads to its longest input (text): training should group batches by length."""
    geometry_class: type[Geometry] = Geometry
    """The dataclass of this modality's input sizes (geometry.py)."""

    def geo(self, icpc: ICPCConfig) -> Geometry:
        """The settings' input sizes, typed."""
        return self.geometry_class.from_dict(icpc.check_resolved("geometry").geometry)

    def resolve(self, icpc: ICPCConfig, model_config: Any) -> None:
        """Fill `icpc.geometry`, `icpc.levels` and `icpc.cascade_levels` for this model, validating them."""
        raise NotImplementedError

    def default_schedule(self, icpc: ICPCConfig) -> str:
        """What `ICPCConfig(schedule=None)` resolves to (the selection rule's choice)."""
        return DEFAULT_SCHEDULE

    def collate(self, processor: Any, features: Sequence[dict[str, Any]], level: float, icpc: ICPCConfig) -> dict:
        """A model-ready batch of `features` at `level` (1.0: uncompressed); labels are the training collator's."""
        raise NotImplementedError

    def tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        """Tokens each sample of a collated batch costs the Transformer."""
        raise NotImplementedError

    def batch_tokens(self, batch: dict[str, Any], icpc: ICPCConfig) -> torch.Tensor:
        """Tokens each sample costs, whether the batch is compressed already or will be on the model's device."""
        return self.tokens(batch, icpc)

    def full_tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        """Tokens each sample of a collated batch would cost uncompressed."""
        raise NotImplementedError

    def prepare(self, processor: Any, raw: Any, icpc: ICPCConfig, limits: InputLimits | None = None) -> dict:
        """One pipeline input (an image, a text, a clip...) as a full-size feature dict for `collate`."""
        raise NotImplementedError

    def prepare_many(
        self, processor: Any, raws: Sequence[Any], icpc: ICPCConfig, limits: InputLimits | None = None
    ) -> list[dict[str, Any]]:
        """Pipeline inputs as features, an error naming the input. Modalities whose processor takes a list override
        it: one processor call per pipeline call rather than per input, most of what a cascade adds to a plain pass."""
        return each(raws, lambda raw: self.prepare(processor, raw, icpc, limits))

    def processor_of(self, pipeline: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def default_cascade_levels(levels: Sequence[float]) -> list[float]:
        """Three steps by default: the training level nearest a quarter and a half of the full cost, then full."""
        targets = (0.5, 0.7)
        chosen = {min(levels, key=lambda lv: abs(lv - t)) for t in targets}
        return sorted(chosen - {1.0}) + [1.0]


class GridModality(Modality):
    """A modality whose input is cut into a grid of patches with a position table over the full grid."""

    axis_names: tuple[str, ...] = ()
    default_axes: tuple[str, ...] = ()

    def sample_tokens(self, patches: int, batch_size: int, icpc: ICPCConfig) -> torch.Tensor:
        """Tokens per sample: the patches plus the special tokens the architecture prepends (CLS, distillation)."""
        count = patches + self.geo(icpc).special_tokens
        return torch.full((batch_size,), count, dtype=torch.long)

    def geometry(self, model_config: Any) -> Geometry:
        """Model sizes, with `full_grid`: one entry per axis of `axis_names`."""
        raise NotImplementedError

    def compressed_axes(self, icpc: ICPCConfig) -> list[bool]:
        axes = icpc.axes if icpc.axes is not None else list(self.default_axes)
        unknown = [a for a in axes if a not in self.axis_names]
        if unknown:
            raise ValueError(f"Unknown axes {unknown} for {self.name} inputs: choose among {list(self.axis_names)}.")
        return [a in axes for a in self.axis_names]

    def resolve(self, icpc: ICPCConfig, model_config: Any) -> None:
        geometry = self.geometry(model_config)
        icpc.geometry = geometry.to_dict()
        full_grid = geometry.full_grid
        mask = self.compressed_axes(icpc)
        if icpc.levels is None:
            icpc.levels = default_levels(full_grid, mask, icpc.min_level)
        icpc.levels = snap_levels(icpc.levels, full_grid, mask)
        if icpc.cascade_levels is None:
            icpc.cascade_levels = self.default_cascade_levels(icpc.levels)
        icpc.cascade_levels = sorted(set(snap_levels(icpc.cascade_levels, full_grid, mask)))

    def grid(self, level: float, icpc: ICPCConfig) -> tuple[int, ...]:
        return scaled_grid(self.geo(icpc).full_grid, level, self.compressed_axes(icpc))

    # ------------------------------------------------------------------ compression on the model's device
    input_key: str = "pixel_values"
    """The batch key the resampling changes."""

    def compress(self, batch: dict[str, Any], grid: Sequence[int], icpc: ICPCConfig) -> None:
        """Resample a full-size batch's input to `grid`, in place, on the device it is on: the one resampling
        function the collator's CPU path applies too, so both paths give the same batch."""
        raise NotImplementedError

    def arrives_full_size(self, features: Sequence[dict[str, Any]], icpc: ICPCConfig) -> bool:
        """Whether the features' inputs already have the model's size (raw inputs do once processed), so that
        collating at full size costs no resampling and the device path resamples once, as the CPU path does."""
        raise NotImplementedError

    def collate_deferred(
        self, processor: Any, features: Sequence[dict[str, Any]], level: float, icpc: ICPCConfig
    ) -> dict:
        """A full-size batch carrying its level's grid under GRID_KEY (no key when nothing is left to resample)."""
        batch = self.collate(processor, features, 1.0, icpc)
        grid = self.grid(level, icpc)
        if tuple(grid) != tuple(self.geo(icpc).full_grid):
            batch[GRID_KEY] = grid_marker(len(batch[self.input_key]), grid)
        return batch

    def grid_tokens(self, batch: dict[str, Any], grid: Sequence[int], icpc: ICPCConfig) -> torch.Tensor:
        """Tokens each sample of a full-size batch will cost once compressed to `grid`."""
        return self.sample_tokens(math.prod(grid), len(batch[self.input_key]), icpc)

    def batch_tokens(self, batch: dict[str, Any], icpc: ICPCConfig) -> torch.Tensor:
        if GRID_KEY in batch:
            return self.grid_tokens(batch, grid_of_marker(batch[GRID_KEY]), icpc)
        return self.tokens(batch, icpc)


GRID_KEY = "icpc_grid"
"""The batch key of a batch the model compresses on its device (`ICPCDataCollator(resize_on_device=...)`)."""


def grid_marker(batch_size: int, grid: Sequence[int]) -> torch.Tensor:
    """The level's patch grid, carried by the shape of a (batch, *grid) tensor of zeros.

    A shape, not a value: reading it needs no device synchronisation, torch.compile guards on it as on any input
    shape (one graph per level), and Accelerate concatenates and splits it along the batch like any input.
    """
    return torch.zeros((batch_size, *grid), dtype=torch.bool)


def grid_of_marker(marker: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(size) for size in marker.shape[1:])
