"""ViT: embeddings that accept a smaller patch grid and give it positions from the full table."""

from __future__ import annotations

import torch
from transformers.models.vit.modeling_vit import ViTEmbeddings

from .patch_base import GridEmbeddingsMixin, SwapPatch


class ICPCViTEmbeddings(GridEmbeddingsMixin, ViTEmbeddings):
    """ViTEmbeddings whose forward takes any grid of whole patches no larger than the model's."""

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.BoolTensor | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> torch.Tensor:
        height, width = pixel_values.shape[-2:]
        if interpolate_pos_encoding or (height, width) == tuple(self.image_size):
            return super().forward(pixel_values, bool_masked_pos, interpolate_pos_encoding)
        grid = self.icpc_check_grid(
            (height, width), self.patch_embeddings.patch_size, self.patch_embeddings.patch_size, "image"
        )
        embeddings = self.patch_embeddings(pixel_values)
        batch_size = embeddings.shape[0]
        if bool_masked_pos is not None:
            mask = bool_masked_pos.unsqueeze(-1).type_as(embeddings)
            embeddings = embeddings * (1.0 - mask) + self.mask_token.expand_as(embeddings) * mask
        table = self.position_embeddings[0]
        positions = torch.cat((table[:1], self.icpc_positions(table[1:], grid)))
        embeddings = torch.cat((self.cls_token.expand(batch_size, -1, -1), embeddings), dim=1) + positions
        return self.dropout(embeddings)


PATCH = SwapPatch(ViTEmbeddings, ICPCViTEmbeddings)
