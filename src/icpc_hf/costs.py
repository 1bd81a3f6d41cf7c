"""Estimated forward FLOPs of a Transformer encoder, to turn token counts into compute."""

from __future__ import annotations

from typing import Any

import torch


def encoder_flops(tokens: torch.Tensor | int, model_config: Any) -> torch.Tensor:
    """Multiply-adds x 2 of the encoder layers for a sequence of `tokens` (per sample).

    Per layer: the four attention projections (8 n d^2), the MLP (4 n d f) and the two attention products
    (4 n^2 d). Patch and position embeddings and the head are a rounding error next to these and left out.
    """
    config = getattr(model_config, "text_config", model_config)
    hidden = config.hidden_size
    inner = getattr(config, "intermediate_size", 4 * hidden)
    layers = config.num_hidden_layers
    n = torch.as_tensor(tokens, dtype=torch.float64)
    return layers * (8 * n * hidden**2 + 4 * n * hidden * inner + 4 * n**2 * hidden)
