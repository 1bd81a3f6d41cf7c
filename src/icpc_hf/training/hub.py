"""Hub artifacts: weights, processor, `config.icpc`, a model card and pipeline code the Hub can serve."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from torch import nn
from transformers.dynamic_module_utils import custom_object_save

from ..patching import base_model_of, icpc_settings, patch_model
from ..registry import Registration, registration_for
from .model_card import Measured, save_model_card


def build_pipeline(model: nn.Module, processor: Any, **kwargs: Any):
    """The ICPC pipeline of a patched model's modality, around `model` and its processor."""
    registration = registration_for(icpc_settings(model).model_type)
    return registration.pipeline_class(
        model=base_model_of(model), **{registration.processor_argument: processor}, **kwargs
    )


REMOTE_TASK_SUFFIX = "-remote-code"
"""The config's `custom_pipelines` names the served code's task apart from the task icpc_hf registers, because
`pipeline()` gives a task found in `custom_pipelines` to the remote code (and asks for `trust_remote_code`)."""


def remote_task(registration: Registration) -> str:
    """The task under which `config.json` lists the copied pipeline code, e.g. icpc-image-classification-remote-code."""
    return registration.task + REMOTE_TASK_SUFFIX


def mark_servable(model: nn.Module) -> Registration:
    """Put the `custom_pipelines` entry in the model's config, so every later `save_pretrained` writes it."""
    registration = registration_for(icpc_settings(model).model_type)
    pipeline_class = registration.pipeline_class
    base_model_of(model).config.custom_pipelines = {
        remote_task(registration): {
            "impl": f"{pipeline_class.__module__.rsplit('.', 1)[-1]}.{pipeline_class.__name__}",
            "pt": [registration.auto_model.__name__],
            "type": registration.modality.name,
        }
    }
    return registration


def check_processor(processor: Any) -> None:
    if processor is None:
        raise ValueError(
            "An ICPC model is served with its processor, and none was given: pass the image processor, tokenizer or "
            "feature extractor the model was trained with (`save_for_hub(model, processor, ...)`, or "
            "`Trainer(..., processing_class=processor)`)."
        )


def model_title(model: nn.Module) -> str:
    """The card's title: the checkpoint the model was fine-tuned from, else its architecture."""
    config = base_model_of(model).config
    source = str(getattr(config, "_name_or_path", "") or "").rstrip("/")
    name = source.rsplit("/", 1)[-1] if source and not os.path.isabs(source) else ""
    name = name or (config.architectures or [type(base_model_of(model)).__name__])[0]
    return f"{name} fine-tuned with ICPC"


def write_serving_files(
    model: nn.Module,
    processor: Any,
    folder: str | os.PathLike,
    repo_id: str | None = None,
    measured: Measured | None = None,
    results: str | None = None,
    **card_data: Any,
) -> None:
    """Everything but the weights and config.json that a served ICPC folder needs: processor, code and card."""
    check_processor(processor)
    icpc = icpc_settings(model)
    registration = registration_for(icpc.model_type)
    os.makedirs(folder, exist_ok=True)
    processor.save_pretrained(folder)
    custom_object_save(registration.pipeline_class, folder)
    card_data.setdefault("model_name", model_title(model))
    save_model_card(folder, icpc, measured, repo_id=repo_id or str(folder), results=results, **card_data)


def save_for_hub(
    model: nn.Module,
    processor: Any,
    save_directory: str | os.PathLike,
    results: str | None = None,
    callback: Any = None,
    **card_data: Any,
) -> str:
    """Write a folder that `pipeline(model=folder, trust_remote_code=True)` serves without icpc_hf installed.

    `callback`: the ICPCCallback the model was trained with, for a card with what it measured.
    """
    check_processor(processor)
    mark_servable(model)
    base_model_of(model).save_pretrained(save_directory)
    measured = callback.measured() if callback is not None else None
    write_serving_files(
        model, processor, save_directory, card_data.pop("repo_id", None), measured, results, **card_data
    )
    return str(save_directory)


def _upload(save: Any, repo_id: str, private: bool | None, token: str | None, commit_message: str) -> Any:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        save(folder)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)


def push_to_hub(
    model: nn.Module,
    processor: Any,
    repo_id: str,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload ICPC model",
    results: str | None = None,
    callback: Any = None,
    **card_data: Any,
) -> Any:
    """`save_for_hub` into a temporary folder, then upload it as one commit to `repo_id`."""
    check_processor(processor)
    return _upload(
        lambda folder: save_for_hub(
            model, processor, folder, results=results, callback=callback, repo_id=repo_id, **card_data
        ),
        repo_id,
        private,
        token,
        commit_message,
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
    peft_model: nn.Module,
    repo_id: str,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload ICPC adapter",
) -> Any:
    return _upload(lambda folder: save_adapter(peft_model, folder), repo_id, private, token, commit_message)


def load_adapter(base_model: nn.Module, adapter: str | os.PathLike, icpc: Any = None, **kwargs: Any) -> nn.Module:
    """Base model + adapter, patched with the adapter's ICPC settings (or `icpc`, when given)."""
    from huggingface_hub import hf_hub_download
    from peft import PeftModel

    from ..config import ICPCConfig

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
