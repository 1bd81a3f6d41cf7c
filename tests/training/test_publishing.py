"""Publisher, without a Trainer: which folders it completes, with what, and the card it uploads."""

import logging
import os
from types import SimpleNamespace

import huggingface_hub
import pytest
from helpers import tiny_image_processor, tiny_vit
from torch.utils.data import DataLoader

from icpc_hf import ICPCConfig, ICPCDataCollator, patch_model
from icpc_hf.training.model_card import Measured
from icpc_hf.training.publishing import Publisher

MEASURED = Measured(
    train_totals={"samples": 8, "tokens": 40, "full_tokens": 80, "flops": 1.0, "full_flops": 2.0},
    missing="no evaluation set in this test",
)


def args(tmp_path, **kwargs):
    values = dict(should_save=True, hub_model_id=None, output_dir=str(tmp_path / "out"))
    values.update(kwargs)
    return SimpleNamespace(**values)


def served_files(folder):
    return {"preprocessor_config.json", "README.md"} <= set(os.listdir(folder)) and any(
        name.endswith(".py") for name in os.listdir(folder)
    )


def test_begin_marks_the_model_servable_only_with_a_processor_and_publishing_on():
    for enabled, processor, listed in (
        (True, tiny_image_processor(), True),
        (True, None, False),
        (False, tiny_image_processor(), False),
    ):
        model = patch_model(tiny_vit(), ICPCConfig())
        publisher = Publisher(enabled)
        publisher.begin(model, processor)
        assert publisher.training and (publisher.processor is not None) == (enabled and processor is not None)
        assert bool(getattr(model.config, "custom_pipelines", None)) == listed


def test_write_completes_a_folder_with_processor_code_and_card(tmp_path):
    model = patch_model(tiny_vit(), ICPCConfig())
    publisher = Publisher()
    publisher.begin(model, tiny_image_processor())
    publisher.write(args(tmp_path), model, str(tmp_path / "folder"), MEASURED)
    assert served_files(tmp_path / "folder")
    assert "no evaluation set in this test" in (tmp_path / "folder" / "README.md").read_text()
    publisher.write(args(tmp_path, should_save=False), model, str(tmp_path / "other"), MEASURED)  # not this rank
    Publisher(enabled=False).write(args(tmp_path), model, str(tmp_path / "off"), MEASURED)
    assert not (tmp_path / "other").exists() and not (tmp_path / "off").exists()
    with pytest.raises(ValueError, match="served with its processor"):
        Publisher().write(args(tmp_path), model, str(tmp_path / "none"), MEASURED)
    assert not (tmp_path / "none").exists()


def test_checkpoints_are_completed_where_the_trainer_saved_them(tmp_path):
    model = patch_model(tiny_vit(), ICPCConfig())
    publisher = Publisher()
    publisher.checkpoint_saved(args(tmp_path), SimpleNamespace(global_step=4), model, MEASURED)  # no processor
    publisher.begin(model, tiny_image_processor())
    publisher.checkpoint_saved(args(tmp_path), SimpleNamespace(global_step=4), model, MEASURED)  # nothing saved
    assert not (tmp_path / "out").exists()
    (tmp_path / "out" / "checkpoint-4").mkdir(parents=True)
    publisher.checkpoint_saved(args(tmp_path), SimpleNamespace(global_step=4), model, MEASURED)
    assert served_files(tmp_path / "out" / "checkpoint-4")


def test_a_push_after_training_finds_the_processor_and_tells_how_to_upload_the_card(tmp_path, caplog):
    icpc = ICPCConfig()
    model = patch_model(tiny_vit(), icpc)
    loader = DataLoader([1], collate_fn=ICPCDataCollator(tiny_image_processor(), icpc))
    publisher = Publisher()
    with caplog.at_level(logging.WARNING):
        publisher.push_begins(args(tmp_path), model, loader, None, MEASURED)
    assert served_files(tmp_path / "out") and "callback.push_model_card(trainer)" in caplog.text
    caplog.clear()
    publisher.begin(model, publisher.processor)  # during training the card is this one: no warning
    with caplog.at_level(logging.WARNING):
        publisher.push_begins(args(tmp_path), model, None, None, MEASURED)
    assert not caplog.records


def test_end_completes_output_dir_when_there_is_a_processor(tmp_path):
    model = patch_model(tiny_vit(), ICPCConfig())
    without = Publisher()
    without.begin(model, None)
    without.end(args(tmp_path), model, MEASURED)
    assert not without.training and not (tmp_path / "out").exists()
    publisher = Publisher()
    publisher.begin(model, tiny_image_processor())
    publisher.end(args(tmp_path), model, MEASURED)
    assert served_files(tmp_path / "out")


def test_the_card_is_uploaded_to_the_trainers_repository(tmp_path, monkeypatch):
    uploads = []

    def upload_file(self, path_or_fileobj, path_in_repo, repo_id, commit_message, revision):
        uploads.append((open(path_or_fileobj).read(), path_in_repo, repo_id, revision))
        return "commit"

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", upload_file)
    model = patch_model(tiny_vit(), ICPCConfig())
    hub_args = SimpleNamespace(
        hub_model_id="someone/icpc-vit", output_dir=str(tmp_path), hub_token=None, hub_revision="main"
    )
    trainer = SimpleNamespace(model=model, args=hub_args, processing_class=tiny_image_processor())
    assert Publisher().push_model_card(trainer, MEASURED) == "commit"
    card, path, repo, revision = uploads[0]
    assert (path, repo, revision) == ("README.md", "someone/icpc-vit", "main") and 'model="someone/icpc-vit"' in card
    trainer.args = SimpleNamespace(**{**vars(hub_args), "hub_model_id": None})
    with pytest.raises(ValueError, match="push_to_hub\\(\\)` first"):
        Publisher().push_model_card(trainer, MEASURED)
