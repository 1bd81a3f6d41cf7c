"""The text family: BERT-style classifiers (position ids taken natively), insignificant words pruned."""

from __future__ import annotations

from transformers import AutoModelForSequenceClassification

from .patch_bert import TEXT_PATCHES
from .pipelines import ICPCPipeline
from .registry import ModelFamily, register
from .text import TextModality


class ICPCTextClassificationPipeline(ICPCPipeline):
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True


FAMILY = register(ModelFamily(
    modality=TextModality(),
    patches=TEXT_PATCHES,
    pipeline_class=ICPCTextClassificationPipeline,
    auto_model=AutoModelForSequenceClassification,
    pipeline_tag="text-classification",
    processor_argument="tokenizer",
    classifier_description="text classifier",
    compression_description="insignificant words pruned",
))
