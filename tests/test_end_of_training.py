"""No trained model is lost at the end of training: what calibration needs is refused before the first step, and a
failure while shipping still saves the weights first (docs/reference/bad-inputs.md, "Training ends")."""

import json
import os

import pytest
import torch
from helpers import run_two_processes, tiny_image_processor
from test_callback_calibration import LEVELS, dataset, make_trainer
from torch.utils.data import IterableDataset
from transformers import ViTForImageClassification

from icpc_hf import ICPCCallback, patch_model
from icpc_hf.patching import base_model_of


class Stream(IterableDataset):
    def __iter__(self):
        return iter(dataset(4, seed=1))


def string_labels():
    return [{**sample, "label": "cat"} for sample in dataset(8, seed=1)]


def no_inputs():
    return [{"label": i % 3} for i in range(8)]


@pytest.mark.parametrize(
    "eval_dataset, eval_strategy, fragment",
    [
        (string_labels, "no", "one class index per evaluation sample"),
        (lambda: Stream(), "no", "reads the evaluation set by index.*Stream"),
        (lambda: {"a": dataset(4, seed=1), "b": dataset(4, seed=2)}, "no", "several evaluation sets \\(a, b\\)"),
        (lambda: [], "no", "evaluation set has 0 sample\\(s\\)"),
        (lambda: dataset(1, seed=1), "no", "has 1 sample.*one half, checked on the other: at least 2.*ship_check"),
        (no_inputs, "no", "first sample cannot be collated.*got keys \\['label'\\].*remove_unused_columns"),
        (lambda: {"a": dataset(4, seed=1), "b": string_labels()}, "epoch", "one class index"),  # every set checked
    ],
    ids=["string labels", "no length", "several sets, none evaluated", "empty", "one sample", "no input", "a bad set"],
)
def test_what_calibration_needs_is_refused_before_the_first_step(tmp_path, eval_dataset, eval_strategy, fragment):
    trainer = make_trainer(tmp_path, ICPCCallback(), eval_dataset=eval_dataset(), eval_strategy=eval_strategy)
    with pytest.raises(ValueError, match=fragment):
        trainer.train()
    assert trainer.state.global_step == 0
    assert not os.path.exists(tmp_path / "icpc-unshipped")


def test_several_sets_with_evaluations_during_training_pass_the_checks(tmp_path):
    callback = ICPCCallback()
    trainer = make_trainer(tmp_path, callback, eval_dataset={"a": dataset(6, seed=1), "b": dataset(6, seed=2)})
    trainer.train()
    assert callback.calibration is not None  # on the last set evaluated


def fail_calibration(monkeypatch):
    def broken(*args, **kwargs):
        raise MemoryError("no room for the calibration passes")

    monkeypatch.setattr("icpc_hf.training.calibration.timing.run_cascade", broken)  # every calibration pass


@pytest.mark.parametrize("unshipped_dir", [None, "kept-here"])
def test_a_failure_while_shipping_saves_the_trained_weights_first(tmp_path, monkeypatch, unshipped_dir):
    fail_calibration(monkeypatch)
    folder = str(tmp_path / unshipped_dir) if unshipped_dir else str(tmp_path / "icpc-unshipped")
    callback = ICPCCallback(unshipped_dir=folder if unshipped_dir else None)
    trainer = make_trainer(tmp_path, callback, eval_dataset=dataset(6, seed=1), processing_class=tiny_image_processor())
    with pytest.raises(RuntimeError, match=f"MemoryError: no room.*weights are saved in {folder}") as raised:
        trainer.train()
    assert isinstance(raised.value.__cause__, MemoryError)
    trained = base_model_of(trainer.model)
    assert getattr(trained.config, "custom_pipelines", None) is not None  # the live model keeps its entry
    config = json.loads(open(os.path.join(folder, "config.json")).read())
    assert "custom_pipelines" not in config and config["icpc"]["levels"] == LEVELS  # no pipeline code: claims nothing
    assert not [name for name in os.listdir(folder) if name.endswith(".py") or name == "README.md"]
    assert not os.path.exists(tmp_path / "config.json")  # and output_dir was not completed as if it shipped
    saved = patch_model(ViTForImageClassification.from_pretrained(folder)).state_dict()  # compensation's included
    assert saved.keys() == trained.state_dict().keys()
    for name, value in trained.state_dict().items():
        assert torch.equal(saved[name], value), name


def test_without_a_failure_nothing_is_saved_aside(tmp_path):
    trainer = make_trainer(tmp_path, ICPCCallback(), eval_dataset=dataset(6, seed=1))
    trainer.train()
    assert not os.path.exists(tmp_path / "icpc-unshipped")


def test_two_processes_calibrate_on_the_evaluation_set_and_ship_the_same_cascade(tmp_path):
    """Under DDP every rank calibrates on the whole evaluation set; the measured level times are rank 0's, so every
    rank ships the same cascade (a rank choosing another would serve another model). Every setting meets the
    target there, so the choice is the cheapest on those times."""
    run_two_processes("ddp_worker.py", 29710, tmp_path, 16, 0, "calibrate")
    records = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert {record["world_size"] for record in records} == {2}
    first, second = records
    assert first["calibrated"] is not None and first["calibrated"] == second["calibrated"]
    assert first["shipped"] == second["shipped"] and first["checked"] == second["checked"]
    assert first["checked"] is None  # off here: the whole set calibrates, and the cheapest setting ships
    assert first["shipped"]["cascade_levels"] == (first["calibrated"]["levels"] or [1.0])
