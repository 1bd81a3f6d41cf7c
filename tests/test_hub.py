import json
import os

import pytest
from helpers import tiny_image_processor, tiny_vit

from icpc_hf import ICPCConfig, patch_model, push_to_hub, save_for_hub
from icpc_hf.registry import REGISTRATIONS
from icpc_hf.training.model_card import render_model_card


def saved_model(folder):
    model = patch_model(tiny_vit(), ICPCConfig(levels=[0.5, 0.75, 1.0], cascade_levels=[0.5, 1.0], thresholds=0.5))
    save_for_hub(model, tiny_image_processor(), folder)
    return model


def test_folder_holds_weights_processor_settings_card_and_pipeline_code(tmp_path):
    saved_model(tmp_path)
    files = set(os.listdir(tmp_path))
    assert {"model.safetensors", "preprocessor_config.json", "config.json", "README.md", "image.py"} <= files
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["icpc"]["levels"] == [0.5, 0.75, 1.0]
    assert (
        config["custom_pipelines"]["icpc-image-classification-remote-code"]["impl"]
        == "image.ICPCImageClassificationPipeline"
    )
    card = (tmp_path / "README.md").read_text()
    assert "library_name: transformers" in card and "- icpc" in card
    assert "0.5, 0.75, 1" in card and "trust_remote_code=True" in card
    # the copied code imports nothing from icpc_hf, so the Hub can serve it alone
    import re

    for name in files:
        if name.endswith(".py"):
            code = (tmp_path / name).read_text()
            assert not re.search(r"^\s*(from|import)\s+icpc_hf", code, flags=re.MULTILINE), name


@pytest.mark.parametrize("registration", REGISTRATIONS, ids=lambda registration: registration.modality.name)
def test_card_takes_tag_task_and_descriptions_from_the_modalitys_registration(registration):
    model_type = sorted(registration.architectures)[0]
    card = str(render_model_card(ICPCConfig(model_type=model_type), repo_id="someone/model"))
    assert f"pipeline_tag: {registration.pipeline_tag}" in card and f"- {registration.modality.name}" in card
    assert f'pipeline("{registration.task}", model="someone/model"' in card
    assert f"A {model_type} {registration.classifier_description} fine-tuned" in card
    assert f"({registration.compression_description})" in card


def test_push_to_hub_uploads_the_hub_folder(monkeypatch):
    import huggingface_hub

    uploaded = {}

    def create_repo(self, repo_id, **kwargs):
        uploaded["repo"] = repo_id

    def upload_folder(self, repo_id, folder_path, commit_message, **kwargs):
        uploaded["files"] = sorted(os.listdir(folder_path))
        uploaded["card"] = open(os.path.join(folder_path, "README.md")).read()
        return "commit"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    model = patch_model(tiny_vit(), ICPCConfig())
    assert push_to_hub(model, tiny_image_processor(), "someone/icpc-vit") == "commit"
    assert uploaded["repo"] == "someone/icpc-vit"
    assert {"model.safetensors", "config.json", "README.md", "image.py"} <= set(uploaded["files"])
    assert 'model="someone/icpc-vit"' in uploaded["card"]
