"""Hub artifacts: weights, processor, `config.icpc`, a model card and pipeline code the Hub can serve."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from torch import nn

from .model_card import render_model_card
from .patching import base_model_of, icpc_settings
from .registry import REGISTRY

PIPELINE_TAGS = {
    "image": "image-classification",
    "text": "text-classification",
    "audio": "audio-classification",
    "video": "video-classification",
}
PROCESSOR_ARGUMENT = {"image": "image_processor", "text": "tokenizer", "audio": "feature_extractor", "video": "image_processor"}


def build_pipeline(model: nn.Module, processor: Any, **kwargs: Any):
    """The ICPC pipeline of a patched model's modality, around `model` and its processor."""
    from . import pipelines

    icpc = icpc_settings(model)
    modality = REGISTRY[icpc.model_type].modality
    pipeline_class = pipelines.PIPELINE_CLASSES[modality.name]
    return pipeline_class(model=base_model_of(model), **{PROCESSOR_ARGUMENT[modality.name]: processor}, **kwargs)


def save_for_hub(
    model: nn.Module, processor: Any, save_directory: str | os.PathLike, results: str | None = None, **card_data: Any
) -> str:
    """Write a folder that `pipeline(model=folder, trust_remote_code=True)` serves without icpc_hf installed."""
    icpc = icpc_settings(model)
    modality = REGISTRY[icpc.model_type].modality
    classifier = build_pipeline(model, processor)
    classifier.save_pretrained(save_directory)
    card = render_model_card(
        icpc,
        task=modality.task,
        modality=modality.name,
        pipeline_tag=PIPELINE_TAGS[modality.name],
        repo_id=card_data.pop("repo_id", str(save_directory)),
        results=results,
        **card_data,
    )
    card.save(os.path.join(save_directory, "README.md"))
    return str(save_directory)


def push_to_hub(
    model: nn.Module, processor: Any, repo_id: str, private: bool | None = None, token: str | None = None,
    commit_message: str = "Upload ICPC model", results: str | None = None, **card_data: Any,
) -> Any:
    """`save_for_hub` into a temporary folder, then upload it as one commit to `repo_id`."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        save_for_hub(model, processor, folder, results=results, repo_id=repo_id, **card_data)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)
