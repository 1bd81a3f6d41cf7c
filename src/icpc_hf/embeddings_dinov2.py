"""DINOv2: ViT's patch (one CLS token, then the patches' rows of the position table) on DINOv2's embeddings.

Unpatched, DINOv2 takes any size by resampling its table bicubically; patched, a smaller grid takes its
positions by the configured strategy (`interpolate` is close to the native resampling) and a full-size input
(`config.image_size`: 518 for Meta's checkpoints, whose image processor crops to 224, so set its `size` and
`crop_size` to the model's) goes to the original forward. A non-square `image_size` fails there as unpatched.
`Dinov2WithRegisters` does not fit this forward: its register tokens come after the CLS token without positions.
"""

from __future__ import annotations

from transformers.models.dinov2.modeling_dinov2 import Dinov2Embeddings

from .embeddings import SwappedEmbeddings
from .embeddings_vit import PrefixedGridEmbeddings


class ICPCDinov2Embeddings(PrefixedGridEmbeddings, Dinov2Embeddings):
    pass


DINOV2 = SwappedEmbeddings(Dinov2Embeddings, ICPCDinov2Embeddings, special_tokens=1)  # CLS
