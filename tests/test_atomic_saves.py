"""Saving is all or nothing: `save_for_hub` and the callback's writes go to a folder beside the target first, so a
failure leaves the previous folder (or none), never one whose config names pipeline code that is not there."""

import json
import os

import pytest
import torch
from helpers import tiny_image_processor, tiny_vit
from transformers import ViTForImageClassification

from icpc_hf import ICPCConfig, patch_model, save_for_hub
from icpc_hf.training.hub import staged
from icpc_hf.training.model_card import Measured
from icpc_hf.training.publishing import Publisher


def model():
    return patch_model(tiny_vit(), ICPCConfig(levels=[0.5, 1.0], cascade_levels=[0.5, 1.0]))


def snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def test_card_tags_are_added_to_icpcs_own(tmp_path):
    save_for_hub(model(), tiny_image_processor(), tmp_path / "hub", tags=["vision", "icpc"], license="mit")
    card = (tmp_path / "hub" / "README.md").read_text()
    for tag in ("- icpc\n", "- icpc-hf", "- image", "- vision", "license: mit"):
        assert tag in card
    assert card.count("- icpc\n") == 1


def test_a_failed_save_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("icpc_hf.training.hub.save_model_card", broken_card)
    with pytest.raises(RuntimeError, match="card failed"):
        save_for_hub(model(), tiny_image_processor(), tmp_path / "hub")
    assert os.listdir(tmp_path) == []  # neither the folder nor its staging copy


def broken_card(*args, **kwargs):
    raise RuntimeError("card failed")


def test_a_failed_save_leaves_the_previous_folder_as_it_was(tmp_path, monkeypatch):
    folder = tmp_path / "hub"
    save_for_hub(model(), tiny_image_processor(), folder)
    (folder / "notes.txt").write_text("the user's own file")
    before = snapshot(folder)
    monkeypatch.setattr("icpc_hf.training.hub.save_model_card", broken_card)
    with pytest.raises(RuntimeError, match="card failed"):
        save_for_hub(model(), tiny_image_processor(), folder)
    assert snapshot(folder) == before and os.listdir(tmp_path) == ["hub"]


def test_a_second_save_replaces_the_first_and_keeps_other_files(tmp_path):
    folder = tmp_path / "hub"
    save_for_hub(model(), tiny_image_processor(), folder)
    (folder / "notes.txt").write_text("kept")
    (folder / "model-00001-of-00002.safetensors").write_text("a stale shard of an earlier save")
    second = model()
    save_for_hub(second, tiny_image_processor(), folder)
    assert (folder / "notes.txt").read_text() == "kept"
    assert not (folder / "model-00001-of-00002.safetensors").exists()  # as save_pretrained cleans them
    loaded = ViTForImageClassification.from_pretrained(folder).state_dict()
    assert all(torch.equal(loaded[name], value) for name, value in second.state_dict().items())
    assert os.listdir(tmp_path) == ["hub"]


def test_staged_replaces_files_only_when_the_block_succeeds(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.txt").write_text("old")
    with pytest.raises(KeyError):
        with staged(folder) as staging:
            open(os.path.join(staging, "a.txt"), "w").write("new")
            raise KeyError("interrupted")
    assert (folder / "a.txt").read_text() == "old" and os.listdir(tmp_path) == ["out"]
    with staged(folder) as staging:
        open(os.path.join(staging, "a.txt"), "w").write("new")
    assert (folder / "a.txt").read_text() == "new" and os.listdir(tmp_path) == ["out"]


def test_a_failed_callback_write_leaves_the_trainers_folder_claiming_nothing(tmp_path, monkeypatch):
    """The Trainer writes a checkpoint's config.json (with `custom_pipelines`) before the callback adds the code."""
    trained = model()
    publisher = Publisher()
    publisher.begin(trained, tiny_image_processor())
    checkpoint = tmp_path / "checkpoint-4"
    trained.save_pretrained(checkpoint)
    assert "custom_pipelines" in json.loads((checkpoint / "config.json").read_text())
    monkeypatch.setattr("icpc_hf.training.publishing.write_serving_files", broken_card)
    args = type("Args", (), {"should_save": True, "hub_model_id": None})()
    with pytest.raises(RuntimeError, match="card failed"):
        publisher.write(args, trained, str(checkpoint), Measured())
    config = json.loads((checkpoint / "config.json").read_text())
    assert "custom_pipelines" not in config and config["icpc"]["levels"] == [0.5, 1.0]
    assert not [name for name in os.listdir(checkpoint) if name.endswith(".py")]
    assert os.listdir(tmp_path) == ["checkpoint-4"]
