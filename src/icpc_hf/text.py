"""Text (BERT-style classifiers): its pipeline and registration; the modality is text_modality.py."""

from __future__ import annotations

from transformers import AutoModelForSequenceClassification
from transformers.models.albert.modeling_albert import AlbertEmbeddings
from transformers.models.bert.modeling_bert import BertEmbeddings
from transformers.models.camembert.modeling_camembert import CamembertEmbeddings
from transformers.models.distilbert.modeling_distilbert import Embeddings as DistilBertEmbeddings
from transformers.models.electra.modeling_electra import ElectraEmbeddings
from transformers.models.modernbert.modeling_modernbert import ModernBertEmbeddings
from transformers.models.roberta.modeling_roberta import RobertaEmbeddings
from transformers.models.xlm_roberta.modeling_xlm_roberta import XLMRobertaEmbeddings

from .embeddings_bert import TextPositions
from .pipelines import ICPCPipeline
from .registry import Registration, register
from .text_modality import TextModality
from .text_tokens import TextGeometry


class ICPCTextClassificationPipeline(ICPCPipeline):
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True


REGISTRATION = register(
    Registration(
        modality=TextModality(),
        architectures={
            "bert": TextPositions(BertEmbeddings),
            "distilbert": TextPositions(DistilBertEmbeddings),
            "electra": TextPositions(ElectraEmbeddings),
            "albert": TextPositions(AlbertEmbeddings),
            "roberta": TextPositions(RobertaEmbeddings, offset_from_padding=True),
            "xlm-roberta": TextPositions(XLMRobertaEmbeddings, offset_from_padding=True),
            "camembert": TextPositions(CamembertEmbeddings, offset_from_padding=True),
            "modernbert": TextPositions(ModernBertEmbeddings, table=False),
        },
        pipeline_class=ICPCTextClassificationPipeline,
        auto_model=AutoModelForSequenceClassification,
        pipeline_tag="text-classification",
        processor_argument="tokenizer",
        classifier_description="text classifier",
        compression_description="insignificant words pruned",
    )
)


__all__ = ["ICPCTextClassificationPipeline", "REGISTRATION", "TextGeometry", "TextModality"]
