"""BERT-family models take `position_ids` natively: nothing is swapped, the position tables are only checked.

BERT, DistilBERT, ELECTRA and ALBERT count positions from 0; RoBERTa, XLM-RoBERTa and CamemBERT from
`pad_token_id + 1` (their padding takes position `pad_token_id`). `TextPositions` records that offset in
the settings' geometry (`position_offset`) and `TextModality` adds it to the original positions it puts in the batch.
ModernBERT has no position table: its rotary attention turns `position_ids` into angles, so the original
positions reach it the same way and only the table check is skipped.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .config import ICPCConfig


class TextPositions:
    """Check that the model's embeddings are the kind whose `position_ids` the collator fills, table size included.

    These models take `position_ids` natively: nothing is swapped, so there is nothing to remove.
    """

    accepts_position_ids = True

    def __init__(self, embeddings: type[nn.Module], offset_from_padding: bool = False, table: bool = True):
        self.embeddings = embeddings
        self.offset_from_padding = offset_from_padding
        """Positions start at `pad_token_id + 1` (RoBERTa-style) rather than 0."""
        self.table = table
        """The embeddings hold a position table (absolute positions); False for rotary positions (ModernBERT)."""

    def geometry(self, model_config: Any) -> dict[str, Any]:
        offset = (getattr(model_config, "pad_token_id", None) or 0) + 1 if self.offset_from_padding else 0
        return {"position_offset": offset}

    def position_strategy(self, model: nn.Module) -> str:
        return "crop"  # a text's kept tokens keep their own positions: no strategy applies

    def apply(self, model: nn.Module, icpc: ICPCConfig) -> int:
        found = [m for m in model.modules() if isinstance(m, self.embeddings)]
        if not found:
            raise ValueError(
                f"No {self.embeddings.__name__} module found in {type(model).__name__}: icpc_hf feeds original "
                "positions through these embeddings' `position_ids` and cannot serve this model."
            )
        table_size = int(icpc.geometry["max_position_embeddings"])
        for module in found if self.table else []:
            rows = module.position_embeddings.num_embeddings
            if rows != table_size:
                raise ValueError(
                    f"The model's position table has {rows} rows but its config says max_position_embeddings="
                    f"{table_size}: fix the config so positions of long texts stay inside the table."
                )
        return 0

    def remove(self, model: nn.Module) -> None:
        return None
