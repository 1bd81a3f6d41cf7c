"""Hub artifacts: weights, processor, `config.icpc`, a model card and pipeline code the Hub can serve."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
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


WEIGHT_FILES = re.compile(r"(model|pytorch_model)(-\d{5}-of-\d{5})?\.(safetensors|bin)(\.index\.json)?")
"""Weight files `save_pretrained` writes; a save replaces those of an earlier one, as `save_pretrained` cleans them."""


@contextlib.contextmanager
def staged(folder: str | os.PathLike) -> Iterator[str]:
    """A temporary folder beside `folder` to write into. If the writing fails it is removed and `folder` is as it
    was (or absent); if it succeeds, its files replace theirs in `folder` (one rename when `folder` is new), and the
    weights of an earlier save that this one did not write are removed. Other files in `folder` are kept: it can be
    a Trainer's output or checkpoint folder."""
    folder = os.path.abspath(folder)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.", suffix=".partial", dir=os.path.dirname(folder))
    try:
        yield staging
        if not os.path.isdir(folder):
            os.rename(staging, folder)
            return
        written = set(os.listdir(staging))
        for name in written:
            os.replace(os.path.join(staging, name), os.path.join(folder, name))
        if any(WEIGHT_FILES.fullmatch(name) for name in written):
            for name in os.listdir(folder):
                if WEIGHT_FILES.fullmatch(name) and name not in written:
                    os.remove(os.path.join(folder, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unclaim(folder: str | os.PathLike) -> None:
    """Drop the `custom_pipelines` entry from the config.json in `folder` (when there is one): after a failed write
    the pipeline code is not there, so the folder must not claim to be servable."""
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    if config.pop("custom_pipelines", None) is None:
        return
    with open(f"{path}.partial", "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
    os.replace(f"{path}.partial", path)


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

    `callback`: the ICPCCallback the model was trained with, for a card with what it measured. Everything is
    written beside the folder first (`staged`): a failure leaves the folder as it was, or absent.
    """
    check_processor(processor)
    mark_servable(model)
    measured = callback.measured() if callback is not None else None
    repo_id = card_data.pop("repo_id", None) or str(save_directory)
    with staged(save_directory) as folder:
        base_model_of(model).save_pretrained(folder)
        write_serving_files(model, processor, folder, repo_id, measured, results, **card_data)
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
