"""Hub artifacts: weights, processor, `config.icpc`, a model card and pipeline code the Hub can serve."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from torch import nn

from .model_card import render_model_card
from .patching import base_model_of, icpc_settings, patch_model
from .registry import family_for



def build_pipeline(model: nn.Module, processor: Any, **kwargs: Any):
    """The ICPC pipeline of a patched model's modality, around `model` and its processor."""
    family = family_for(icpc_settings(model).model_type)
    return family.pipeline_class(model=base_model_of(model), **{family.processor_argument: processor}, **kwargs)


def save_for_hub(
    model: nn.Module, processor: Any, save_directory: str | os.PathLike, results: str | None = None, **card_data: Any
) -> str:
    """Write a folder that `pipeline(model=folder, trust_remote_code=True)` serves without icpc_hf installed."""
    classifier = build_pipeline(model, processor)
    classifier.save_pretrained(save_directory)
    card = render_model_card(
        icpc_settings(model), repo_id=card_data.pop("repo_id", str(save_directory)), results=results, **card_data
    )
    card.save(os.path.join(save_directory, "README.md"))
    return str(save_directory)


def _upload(save: Any, repo_id: str, private: bool | None, token: str | None, commit_message: str) -> Any:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        save(folder)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)


def push_to_hub(
    model: nn.Module, processor: Any, repo_id: str, private: bool | None = None, token: str | None = None,
    commit_message: str = "Upload ICPC model", results: str | None = None, **card_data: Any,
) -> Any:
    """`save_for_hub` into a temporary folder, then upload it as one commit to `repo_id`."""
    return _upload(
        lambda folder: save_for_hub(model, processor, folder, results=results, repo_id=repo_id, **card_data),
        repo_id, private, token, commit_message,
    )


ADAPTER_SETTINGS_NAME = "icpc_config.json"


def save_adapter(peft_model: nn.Module, save_directory: str | os.PathLike) -> str:
    """Save a PEFT adapter with the ICPC settings of its patched base model beside it."""
    icpc = icpc_settings(peft_model)
    peft_model.save_pretrained(save_directory)
    with open(os.path.join(save_directory, ADAPTER_SETTINGS_NAME), "w", encoding="utf-8") as handle:
        handle.write(icpc.to_json_string())
    return str(save_directory)


def push_adapter_to_hub(
    peft_model: nn.Module, repo_id: str, private: bool | None = None, token: str | None = None,
    commit_message: str = "Upload ICPC adapter",
) -> Any:
    return _upload(lambda folder: save_adapter(peft_model, folder), repo_id, private, token, commit_message)


def load_adapter(base_model: nn.Module, adapter: str | os.PathLike, icpc: Any = None, **kwargs: Any) -> nn.Module:
    """Base model + adapter, patched with the adapter's ICPC settings (or `icpc`, when given)."""
    from huggingface_hub import hf_hub_download
    from peft import PeftModel

    from .config import ICPCConfig

    if icpc is None:
        local = os.path.join(adapter, ADAPTER_SETTINGS_NAME)
        try:
            path = local if os.path.isdir(adapter) else hf_hub_download(str(adapter), ADAPTER_SETTINGS_NAME)
            with open(path, encoding="utf-8") as handle:
                icpc = ICPCConfig.from_json_string(handle.read())
        except (OSError, ValueError) as error:
            raise ValueError(
                f"The adapter at {adapter} has no ICPC settings ({ADAPTER_SETTINGS_NAME}); it was not saved with "
                "`icpc_hf.save_adapter`. Pass the settings it was trained with: `load_adapter(base, adapter, "
                "icpc=ICPCConfig(...))`."
            ) from error
    model = PeftModel.from_pretrained(base_model, adapter, **kwargs)
    return patch_model(model, icpc)
