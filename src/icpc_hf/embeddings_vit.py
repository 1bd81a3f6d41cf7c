"""ViT and DeiT: embeddings that accept a smaller patch grid and give it positions from the full table.

Both put special tokens before the patches (ViT a CLS token, DeiT a CLS and a distillation token), each with its
own row at the start of the position table; the patches' rows follow. One forward serves both (and DINOv2:
embeddings_dinov2.py).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.models.deit.modeling_deit import DeiTEmbeddings
from transformers.models.vit.modeling_vit import ViTEmbeddings

from .compensation import compensate
from .embeddings import GridEmbeddingsMixin, SwappedEmbeddings


class PrefixedGridEmbeddings(GridEmbeddingsMixin):
    """The forward of image embeddings with special tokens before the patches, for any grid of whole patches.

    `native` passes on the original forward's other arguments untouched (ViT's `interpolate_pos_encoding`; DINOv2
    has none), so one forward serves every signature and a full-size call is exactly the original call.
    """

    def icpc_special_tokens(self, batch_size: int) -> torch.Tensor:
        return self.cls_token.expand(batch_size, -1, -1)

    def icpc_learned_table(self) -> tuple[torch.Tensor, tuple[int, ...]]:
        sizes, patch = self.patch_embeddings.image_size, self.patch_embeddings.patch_size
        grid = (sizes[0] // patch[0], sizes[1] // patch[1])
        return self.position_embeddings[0, -grid[0] * grid[1] :], grid

    def forward(
        self, pixel_values: torch.Tensor, bool_masked_pos: torch.BoolTensor | None = None, **native: Any
    ) -> torch.Tensor:
        height, width = pixel_values.shape[-2:]
        if any(native.values()) or (height, width) == tuple(self.patch_embeddings.image_size):
            return super().forward(pixel_values, bool_masked_pos, **native)
        grid = self.icpc_check_grid(
            (height, width), self.patch_embeddings.patch_size, self.patch_embeddings.patch_size, "image"
        )
        embeddings = self.patch_embeddings(pixel_values)
        batch_size = embeddings.shape[0]
        if bool_masked_pos is not None:
            mask = bool_masked_pos.unsqueeze(-1).type_as(embeddings)
            embeddings = embeddings * (1.0 - mask) + self.mask_token.expand_as(embeddings) * mask
        special = self.icpc_special_tokens(batch_size)
        count = special.shape[1]
        table = self.position_embeddings[0]
        positions = torch.cat((table[:count], self.icpc_positions(table[count:], grid)))
        embeddings = torch.cat((special, embeddings), dim=1) + positions
        return self.dropout(compensate(self, embeddings, grid))


class ICPCViTEmbeddings(PrefixedGridEmbeddings, ViTEmbeddings):
    pass


class ICPCDeiTEmbeddings(PrefixedGridEmbeddings, DeiTEmbeddings):
    def icpc_special_tokens(self, batch_size: int) -> torch.Tensor:
        return torch.cat(
            (self.cls_token.expand(batch_size, -1, -1), self.distillation_token.expand(batch_size, -1, -1)), dim=1
        )


VIT = SwappedEmbeddings(ViTEmbeddings, ICPCViTEmbeddings, special_tokens=1)
DEIT = SwappedEmbeddings(DeiTEmbeddings, ICPCDeiTEmbeddings, special_tokens=2)
