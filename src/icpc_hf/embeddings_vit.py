"""ViT and DeiT: embeddings that accept a smaller patch grid and give it positions from the full table.

Both put special tokens before the patches (ViT a CLS token, DeiT a CLS and a distillation token), each with its
own row at the start of the position table; the patches' rows follow. One forward serves both.
"""

from __future__ import annotations

import torch
from transformers.models.deit.modeling_deit import DeiTEmbeddings
from transformers.models.vit.modeling_vit import ViTEmbeddings

from .embeddings import GridEmbeddingsMixin, SwapPatch


class PrefixedGridEmbeddings(GridEmbeddingsMixin):
    """The forward of image embeddings with special tokens before the patches, for any grid of whole patches."""

    def icpc_special_tokens(self, batch_size: int) -> torch.Tensor:
        raise NotImplementedError

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
        special = self.icpc_special_tokens(batch_size)
        count = special.shape[1]
        table = self.position_embeddings[0]
        positions = torch.cat((table[:count], self.icpc_positions(table[count:], grid)))
        embeddings = torch.cat((special, embeddings), dim=1) + positions
        return self.dropout(embeddings)


class ICPCViTEmbeddings(PrefixedGridEmbeddings, ViTEmbeddings):
    def icpc_special_tokens(self, batch_size: int) -> torch.Tensor:
        return self.cls_token.expand(batch_size, -1, -1)


class ICPCDeiTEmbeddings(PrefixedGridEmbeddings, DeiTEmbeddings):
    def icpc_special_tokens(self, batch_size: int) -> torch.Tensor:
        return torch.cat(
            (self.cls_token.expand(batch_size, -1, -1), self.distillation_token.expand(batch_size, -1, -1)), dim=1
        )


PATCH = SwapPatch(ViTEmbeddings, ICPCViTEmbeddings, special_tokens=1)
DEIT_PATCH = SwapPatch(DeiTEmbeddings, ICPCDeiTEmbeddings, special_tokens=2)
