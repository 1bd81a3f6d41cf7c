"""The audio family: the Audio Spectrogram Transformer, spectrograms shortened to fewer patches."""

from __future__ import annotations

from transformers import AutoModelForAudioClassification

from .audio import AudioModality
from .patch_ast import PATCH as AST_PATCH
from .pipelines import ICPCPipeline
from .registry import ModelFamily, register


class ICPCAudioClassificationPipeline(ICPCPipeline):
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False


FAMILY = register(ModelFamily(
    modality=AudioModality(),
    patches={"audio-spectrogram-transformer": AST_PATCH},
    pipeline_class=ICPCAudioClassificationPipeline,
    auto_model=AutoModelForAudioClassification,
    pipeline_tag="audio-classification",
    processor_argument="feature_extractor",
    classifier_description="audio classifier",
    compression_description="spectrograms shortened",
))
