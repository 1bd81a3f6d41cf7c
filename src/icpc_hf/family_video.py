"""The video family: VideoMAE and ViViT classifiers, clips cut to fewer and smaller frames."""

from __future__ import annotations

from transformers import AutoModelForVideoClassification

from .patch_videomae import PATCH as VIDEOMAE_PATCH
from .patch_vivit import PATCH as VIVIT_PATCH
from .pipelines import ICPCPipeline
from .registry import ModelFamily, register
from .video import VideoModality


class ICPCVideoClassificationPipeline(ICPCPipeline):
    """VideoMAE ships a video processor (needs torchvision) and an image processor: load whichever is there,
    as Transformers' own video-classification pipeline does; `VideoModality.processor_of` prefers the former."""

    _load_processor = False
    _load_image_processor = None
    _load_video_processor = None
    _load_feature_extractor = False
    _load_tokenizer = False


FAMILY = register(ModelFamily(
    modality=VideoModality(),
    patches={"videomae": VIDEOMAE_PATCH, "vivit": VIVIT_PATCH},
    pipeline_class=ICPCVideoClassificationPipeline,
    auto_model=AutoModelForVideoClassification,
    pipeline_tag="video-classification",
    processor_argument="image_processor",
    classifier_description="video classifier",
    compression_description="fewer and smaller frames",
))
