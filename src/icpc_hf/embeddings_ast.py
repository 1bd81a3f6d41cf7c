"""AST: embeddings that accept a spectrogram shorter (or with fewer mel bins) than the model's, with positions
from the full (frequency, time) table."""

from __future__ import annotations

import torch
from transformers.models.audio_spectrogram_transformer.modeling_audio_spectrogram_transformer import ASTEmbeddings

from .compensation import compensate
from .embeddings import GridEmbeddingsMixin, SwappedEmbeddings


class ICPCASTEmbeddings(GridEmbeddingsMixin, ASTEmbeddings):
    """ASTEmbeddings whose forward takes any spectrogram of at least one patch and no larger than the model's.

    The unpatched module adds its whole position table to the patches, so any other length fails there; here a
    smaller grid takes its subset of the table, and the CLS and distillation tokens keep their own two entries.
    """

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        if input_values.dim() != 3:
            raise ValueError(
                f"AST takes spectrograms of shape (batch, frames, mel bins), got {tuple(input_values.shape)}."
            )
        frames, bins = input_values.shape[-2:]
        if (frames, bins) == (self.config.max_length, self.config.num_mel_bins):
            return super().forward(input_values)
        projection = self.patch_embeddings.projection
        grid = self.icpc_check_grid((bins, frames), projection.kernel_size, projection.stride, "spectrogram")
        embeddings = self.patch_embeddings(input_values)
        batch_size = embeddings.shape[0]
        table = self.position_embeddings[0]
        positions = torch.cat((table[:2], self.icpc_positions(table[2:], grid)))
        special = (self.cls_token.expand(batch_size, -1, -1), self.distillation_token.expand(batch_size, -1, -1))
        embeddings = torch.cat((*special, embeddings), dim=1) + positions
        return self.dropout(compensate(self, embeddings, grid))


AST = SwappedEmbeddings(ASTEmbeddings, ICPCASTEmbeddings, special_tokens=2)  # CLS and distillation
