"""ViViT: embeddings that accept fewer and smaller frames and give them positions from the full learned table.

ViViT cuts a clip into (frames, height, width) tubelets with one Conv3d, puts a CLS token before them and adds a
learned table over the CLS token and the full tubelet grid; it refuses any frame size but the config's. The
patched embeddings run the same projection on a smaller clip and add the CLS row and the rows of the table
chosen by the position strategy (`grid.py`, shared with VideoMAE, images and audio); the clip checks are
VideoMAE's (`ClipGridEmbeddingsMixin`).
"""

from __future__ import annotations

import torch
from transformers.models.vivit.modeling_vivit import VivitEmbeddings

from .compensation import compensate
from .embeddings import SwappedEmbeddings
from .embeddings_videomae import ClipGridEmbeddingsMixin


class ICPCVivitEmbeddings(ClipGridEmbeddingsMixin, VivitEmbeddings):
    """VivitEmbeddings whose forward takes any grid of whole tubelets no larger than the model's."""

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        projection = self.patch_embeddings.projection
        kernel = tuple(projection.kernel_size)
        full = tuple(size * step for size, step in zip(self.icpc_full_grid, kernel))
        grid = self.icpc_clip_grid(pixel_values, kernel, full, projection.in_channels, "ViViT")
        if grid is None or interpolate_pos_encoding:
            return super().forward(pixel_values, interpolate_pos_encoding)
        embeddings = self.patch_embeddings(pixel_values)
        table = self.position_embeddings[0]
        positions = torch.cat((table[:1], self.icpc_positions(table[1:], grid)))
        embeddings = torch.cat((self.cls_token.expand(embeddings.shape[0], -1, -1), embeddings), dim=1) + positions
        return self.dropout(compensate(self, embeddings, grid))


VIVIT = SwappedEmbeddings(VivitEmbeddings, ICPCVivitEmbeddings, special_tokens=1)  # CLS
