"""The image family: ViT and DeiT classifiers, images resized to fewer whole patches."""

from __future__ import annotations

from transformers import AutoModelForImageClassification

from .image import ImageModality
from .patch_vit import DEIT_PATCH
from .patch_vit import PATCH as VIT_PATCH
from .pipelines import ICPCPipeline
from .registry import ModelFamily, register


class ICPCImageClassificationPipeline(ICPCPipeline):
    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False


FAMILY = register(ModelFamily(
    modality=ImageModality(),
    patches={"vit": VIT_PATCH, "deit": DEIT_PATCH},
    pipeline_class=ICPCImageClassificationPipeline,
    auto_model=AutoModelForImageClassification,
    pipeline_tag="image-classification",
    processor_argument="image_processor",
    classifier_description="image classifier",
    compression_description="images resized to a smaller whole number of patches",
))
