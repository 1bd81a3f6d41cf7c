"""BERT-family models take `position_ids` natively: nothing is swapped, the position tables are only checked.

BERT and DistilBERT count positions from 0; RoBERTa, XLM-RoBERTa and CamemBERT from `pad_token_id + 1` (their
padding takes position `pad_token_id`). `TextModality` records that offset in `geometry["position_offset"]` and
adds it to the original positions it puts in the batch, so all of them are served correctly.
"""

from __future__ import annotations

from torch import nn
from transformers.models.bert.modeling_bert import BertEmbeddings
from transformers.models.camembert.modeling_camembert import CamembertEmbeddings
from transformers.models.distilbert.modeling_distilbert import Embeddings as DistilBertEmbeddings
from transformers.models.roberta.modeling_roberta import RobertaEmbeddings
from transformers.models.xlm_roberta.modeling_xlm_roberta import XLMRobertaEmbeddings

from .config import ICPCConfig
from .patch_base import NativePositionsPatch


class TextPositionsPatch(NativePositionsPatch):
    """Check that the model's embeddings are the kind whose `position_ids` the collator fills, table size included."""

    def __init__(self, embeddings: type[nn.Module]):
        self.embeddings = embeddings

    def apply(self, model: nn.Module, icpc: ICPCConfig) -> int:
        found = [m for m in model.modules() if isinstance(m, self.embeddings)]
        if not found:
            raise ValueError(
                f"No {self.embeddings.__name__} module found in {type(model).__name__}: icpc_hf feeds original "
                "positions through these embeddings' `position_ids` and cannot serve this model."
            )
        table_size = icpc.geometry["max_position_embeddings"]
        for module in found:
            rows = module.position_embeddings.num_embeddings
            if rows != table_size:
                raise ValueError(
                    f"The model's position table has {rows} rows but its config says max_position_embeddings="
                    f"{table_size}: fix the config so positions of long texts stay inside the table."
                )
        return 0


TEXT_PATCHES = {
    "bert": TextPositionsPatch(BertEmbeddings),
    "distilbert": TextPositionsPatch(DistilBertEmbeddings),
    "roberta": TextPositionsPatch(RobertaEmbeddings),
    "xlm-roberta": TextPositionsPatch(XLMRobertaEmbeddings),
    "camembert": TextPositionsPatch(CamembertEmbeddings),
}
