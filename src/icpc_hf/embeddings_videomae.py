"""VideoMAE: embeddings that accept fewer and smaller frames and give them positions from the full sinusoid table.

VideoMAE's patch embeddings refuse any frame size but the config's, and its fixed (time, height, width) table
only adds to the full number of tubelets. The patched embeddings run the same Conv3d projection on a smaller
clip (skipping the size check of `VideoMAEPatchEmbeddings.forward` only there) and add the rows of the table
chosen by the position strategy (`grid.py`, shared with images and audio).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.models.videomae.modeling_videomae import VideoMAEEmbeddings

from .compensation import compensate
from .embeddings import GridEmbeddingsMixin, SwappedEmbeddings


class ClipGridEmbeddingsMixin(GridEmbeddingsMixin):
    """The clip checks of the video models (VideoMAE, ViViT): the same five-axis input cut into tubelets."""

    def icpc_clip_grid(
        self, pixel_values: torch.Tensor, kernel: Sequence[int], full: Sequence[int], channels: int, model: str
    ) -> tuple[int, ...] | None:
        """The tubelet grid of a (batch, frames, channels, height, width) clip; None for a full-size clip."""
        if pixel_values.dim() != 5:
            raise ValueError(
                f"{model} takes `pixel_values` of shape (batch, frames, channels, height, width), got "
                f"{tuple(pixel_values.shape)}."
            )
        frames, clip_channels, height, width = pixel_values.shape[1:]
        if (frames, height, width) == tuple(full):
            return None
        if clip_channels != channels:
            raise ValueError(
                f"These clips have {clip_channels} channels but the model takes {channels}: pass "
                "(batch, frames, channels, height, width) pixel values with the model's channel count."
            )
        if frames % kernel[0] or height % kernel[1] or width % kernel[2]:
            raise ValueError(
                f"A clip of {frames} frames of {height}x{width} is not a whole number of {kernel[0]}-frame tubelets of "
                f"{kernel[1]}x{kernel[2]} patches: collate clips with ICPCDataCollator, which snaps them to whole "
                "tubelets."
            )
        return self.icpc_check_grid((frames, height, width), kernel, kernel, "video")


class ICPCVideoMAEEmbeddings(ClipGridEmbeddingsMixin, VideoMAEEmbeddings):
    """VideoMAEEmbeddings whose forward takes any grid of whole tubelets no larger than the model's."""

    def forward(self, pixel_values: torch.Tensor, bool_masked_pos: torch.BoolTensor | None = None) -> torch.Tensor:
        patches = self.patch_embeddings
        kernel = (patches.tubelet_size, *patches.patch_size)
        full = (self.config.num_frames, *patches.image_size)
        grid = self.icpc_clip_grid(pixel_values, kernel, full, patches.num_channels, "VideoMAE")
        if grid is None:
            return super().forward(pixel_values, bool_masked_pos)
        embeddings = patches.projection(pixel_values.permute(0, 2, 1, 3, 4)).flatten(2).transpose(1, 2)
        table = self.position_embeddings[0].detach().to(device=embeddings.device, dtype=embeddings.dtype)
        embeddings = compensate(self, embeddings + self.icpc_positions(table, grid), grid)
        if bool_masked_pos is not None:
            batch_size, tokens, hidden = embeddings.shape
            if tuple(bool_masked_pos.shape) != (batch_size, tokens):
                raise ValueError(
                    f"`bool_masked_pos` has shape {tuple(bool_masked_pos.shape)} but this {grid} grid has "
                    f"{tokens} tubelets per clip: give a (batch={batch_size}, {tokens}) mask."
                )
            visible = (~bool_masked_pos).sum(-1)
            if bool(visible.ne(visible[0]).any()):
                raise ValueError(
                    f"`bool_masked_pos` keeps {visible.tolist()} tubelets per clip: mask the same number in every clip."
                )
            embeddings = embeddings[~bool_masked_pos].reshape(batch_size, -1, hidden)
        return embeddings


VIDEOMAE = SwappedEmbeddings(VideoMAEEmbeddings, ICPCVideoMAEEmbeddings, special_tokens=0)  # no CLS token
