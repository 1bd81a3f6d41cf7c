"""Grid and position arithmetic shared by every patch-grid modality (images, audio, video).

A model with a learned or fixed position table covers a *full grid* of patches (e.g. 14 x 14 for ViT-B/16 at
224 px, 12 x 101 for AST, 8 x 14 x 14 for VideoMAE). A compressed input produces a smaller grid; these functions
say which entries of the full table its patches take. Pure functions, plus a small cache for the patches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def axis_positions(full: int, size: int, strategy: str) -> list[int]:
    """Indices along one axis of the full table taken by a compressed axis of `size` patches.

    `crop` keeps neighbours one step apart, as in a crop of a larger input; `stride` gives patch i the full-table
    index nearest the centre of the area it covers, floor((i + 0.5) * full / size).
    """
    if not 1 <= size <= full:
        raise ValueError(f"A compressed axis needs 1 to {full} patches, got {size}.")
    if strategy == "crop":
        return list(range(size))
    if strategy == "stride":
        return [min(full - 1, math.floor((i + 0.5) * full / size)) for i in range(size)]
    raise ValueError(f"`axis_positions` takes `crop` or `stride`, got {strategy!r}.")


def grid_position_index(full_grid: Sequence[int], grid: Sequence[int], strategy: str) -> torch.Tensor:
    """Row-major flat indices into a table laid out over `full_grid`, for a compressed `grid`."""
    if len(full_grid) != len(grid):
        raise ValueError(f"Grid {tuple(grid)} and full grid {tuple(full_grid)} have different numbers of axes.")
    axes = [torch.tensor(axis_positions(f, g, strategy), dtype=torch.long) for f, g in zip(full_grid, grid)]
    flat = torch.zeros((), dtype=torch.long)
    for axis, full in zip(axes, full_grid):
        flat = flat.unsqueeze(-1) * full + axis
    return flat.reshape(-1)


_RESAMPLE_MODES = {1: "linear", 2: "bicubic", 3: "trilinear"}


def resample_position_table(table: torch.Tensor, full_grid: Sequence[int], grid: Sequence[int]) -> torch.Tensor:
    """Resample a (prod(full_grid), dim) table to (prod(grid), dim): the `interpolate` baseline."""
    dims = len(full_grid)
    if dims not in _RESAMPLE_MODES:
        raise ValueError(f"Can only interpolate 1-, 2- or 3-axis grids, got {tuple(full_grid)}.")
    dim = table.shape[-1]
    volume = table.reshape(1, *full_grid, dim).movedim(-1, 1)
    resized = F.interpolate(volume.float(), size=tuple(grid), mode=_RESAMPLE_MODES[dims], align_corners=False)
    return resized.movedim(1, -1).reshape(-1, dim).to(table.dtype)


def neighbour_similarity(table: torch.Tensor, grid: Sequence[int]) -> float:
    """Mean cosine similarity of the rows of grid-neighbouring patches in a (prod(grid), dim) position table: about 0
    for a freshly initialised table, well above it for one that has learned where each patch sits."""
    rows = F.normalize(table.detach().float().reshape(*grid, -1), dim=-1)
    pairs = [
        (rows.narrow(axis, 0, size - 1) * rows.narrow(axis, 1, size - 1)).sum(-1).mean()
        for axis, size in enumerate(grid)
        if size > 1
    ]
    return float(torch.stack(pairs).mean()) if pairs else 0.0


def conv_output_size(length: int, kernel: int, stride: int) -> int:
    """Patches along an axis of `length` cut by a convolution of `kernel` and `stride` (no padding)."""
    if length < kernel:
        return 0
    return (length - kernel) // stride + 1


def conv_input_size(patches: int, kernel: int, stride: int) -> int:
    """Smallest length along an axis that yields `patches` patches."""
    if patches < 1:
        raise ValueError(f"A grid axis needs at least one patch, got {patches}.")
    return (patches - 1) * stride + kernel


def level_to_patches(level: float, full: int) -> int:
    """Patches kept along an axis of `full` patches at `level` (at least one)."""
    return max(1, min(full, round(level * full)))


def scaled_grid(full_grid: Sequence[int], level: float, compressed_axes: Sequence[bool]) -> tuple[int, ...]:
    """The grid a level gives: compressed axes shrink to `level` of their patches, the others keep theirs."""
    return tuple(level_to_patches(level, full) if shrink else full for full, shrink in zip(full_grid, compressed_axes))


def snap_levels(levels: Sequence[float], full_grid: Sequence[int], compressed_axes: Sequence[bool]) -> list[float]:
    """Round each level to a whole number of patches of the largest compressed axis; refuse levels that
    collapse onto one grid."""
    reference = max((f for f, s in zip(full_grid, compressed_axes) if s), default=1)
    grids: dict[tuple[int, ...], float] = {}
    snapped = []
    for level in levels:
        exact = level_to_patches(level, reference) / reference
        grid = scaled_grid(full_grid, exact, compressed_axes)
        if grid in grids:
            raise ValueError(
                f"Levels {grids[grid]} and {level} give the same {'x'.join(map(str, grid))} patch grid "
                f"(the full grid is {'x'.join(map(str, full_grid))}): use levels at least 1/{reference} apart."
            )
        grids[grid] = level
        snapped.append(exact)
    return snapped


def default_levels(full_grid: Sequence[int], compressed_axes: Sequence[bool], min_level: float) -> list[float]:
    """Every whole-patch size of the largest compressed axis from `min_level` up to the full size."""
    reference = max((f for f, s in zip(full_grid, compressed_axes) if s), default=1)
    smallest = max(1, math.ceil(min_level * reference - 1e-9))
    return [k / reference for k in range(smallest, reference + 1)]


def resize_images(pixel_values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a (batch, channels, height, width) tensor; identity at the same size."""
    if tuple(pixel_values.shape[-2:]) == tuple(size):
        return pixel_values
    return F.interpolate(pixel_values, size=size, mode="bilinear", antialias=True, align_corners=False)


class PositionCache:
    """Per-(grid, strategy, device) index tensors, so a patched forward never rebuilds them in Python."""

    def __init__(self) -> None:
        self._index: dict[tuple, torch.Tensor] = {}

    def positions(
        self, table: torch.Tensor, full_grid: Sequence[int], grid: Sequence[int], strategy: str
    ) -> torch.Tensor:
        if tuple(grid) == tuple(full_grid):
            return table
        if strategy == "interpolate":
            return resample_position_table(table, full_grid, grid)
        key = (tuple(full_grid), tuple(grid), strategy, table.device)
        index = self._index.get(key)
        if index is None:
            # Built outside inference mode: an index made during a cascade must also serve training steps later.
            with torch.inference_mode(False):
                index = self._index[key] = grid_position_index(full_grid, grid, strategy).to(table.device)
        return table.index_select(0, index)
