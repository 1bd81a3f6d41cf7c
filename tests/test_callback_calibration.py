"""ICPCCallback calibrates the served cascade on the evaluation set at the end of training."""

import json
import logging

import pytest
import torch
from helpers import quiet_cpu_args, tiny_vit
from transformers import Trainer, TrainerCallback, ViTForImageClassification

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model
from icpc_hf.patching import icpc_settings
from icpc_hf.training.calibrate import calibrate_thresholds

LEVELS = [0.5, 0.75, 1.0]


def dataset(count, seed, label_key="label"):
    generator = torch.Generator().manual_seed(seed)
    return [{"pixel_values": torch.randn(3, 32, 32, generator=generator), label_key: i % 3} for i in range(count)]


def make_trainer(tmp_path, callback, eval_dataset=None, cascade_levels=LEVELS, processing_class=None, **kwargs):
    torch.manual_seed(0)
    icpc = ICPCConfig(levels=LEVELS, cascade_levels=cascade_levels, seed=1)
    model = patch_model(tiny_vit(), icpc)
    values = dict(
        per_device_train_batch_size=4,
        num_train_epochs=1,
        logging_steps=2,
        eval_strategy="epoch" if eval_dataset is not None else "no",
    )
    values.update(kwargs)
    return Trainer(
        model=model,
        args=quiet_cpu_args(tmp_path, **values),
        train_dataset=dataset(16, seed=0),
        eval_dataset=eval_dataset,
        data_collator=ICPCDataCollator(None, icpc),
        callbacks=[callback],
        processing_class=processing_class,
    )


class LogRecorder(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


def test_calibrated_cascade_is_stored_logged_and_saved(tmp_path, monkeypatch):
    import icpc_hf.training.calibration.timing

    # the default calibration times each level; a fixed clock makes the recomputed expectation below the same
    monkeypatch.setattr(
        icpc_hf.training.calibration.timing,
        "level_seconds",
        lambda run, levels, warmup: [(run(lv), 0.2 + 0.8 * lv * lv)[1] for lv in levels],
    )
    evaluation = dataset(12, seed=1)
    recorder = LogRecorder()
    callback = ICPCCallback(ship_check=False)  # calibrated on the whole set, as the expectation below is
    trainer = make_trainer(tmp_path, callback, eval_dataset=evaluation)
    trainer.add_callback(recorder)
    callback.attach(trainer)  # first in line: the other callbacks see its figures
    before = dict(trainer.model.config.icpc)
    trainer.train()
    stored = trainer.model.config.icpc
    expected = calibrate_thresholds(
        trainer.model,
        evaluation,
        None,
        [f["label"] for f in evaluation],
        levels=LEVELS,
        max_accuracy_loss=0.0,
        reference="best_level",
    ).chosen
    assert (stored["cascade_levels"], stored["thresholds"] or [0.0]) == (expected.levels, expected.thresholds or [0.0])
    assert icpc_settings(trainer.model).cascade_levels == expected.levels  # the model is re-patched with it
    assert stored != before
    calibrated = [h for h in trainer.state.log_history if "icpc/calibrated_accuracy" in h]
    assert len(calibrated) == 1
    assert calibrated[0]["icpc/calibrated_accuracy"] == pytest.approx(expected.accuracy)
    assert calibrated[0]["icpc/calibrated_cost"] == pytest.approx(expected.cost)
    assert calibrated[0]["icpc/calibrated_speedup_est"] == pytest.approx(1 / expected.cost)
    assert calibrated[0]["icpc/calibrated_levels"] == ", ".join(f"{lv:g}" for lv in expected.levels)
    assert any("icpc/calibrated_cost" in logs for logs in recorder.logs)  # the log event reaches other callbacks
    assert any("icpc/token_ratio" in logs for logs in recorder.logs)
    trainer.save_model(str(tmp_path / "saved"))
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())["icpc"]
    assert saved["cascade_levels"] == stored["cascade_levels"] and saved["thresholds"] == stored["thresholds"]
    reloaded = patch_model(ViTForImageClassification.from_pretrained(str(tmp_path / "saved")))
    assert icpc_settings(reloaded).cascade_levels == expected.levels


def test_a_speedup_target_is_passed_to_the_calibration(tmp_path):
    evaluation = dataset(12, seed=2)
    # estimated FLOPs: a tiny model's measured time at small levels may never reach 1.5x (the point of `cost`)
    callback = ICPCCallback(calibrate={"target_speedup": 1.5, "cost": "flops"})
    trainer = make_trainer(tmp_path, callback, eval_dataset=evaluation)
    trainer.train()
    assert callback.calibration.cost_unit == "flops" and callback.calibration.chosen.cost <= 1 / 1.5
    assert trainer.model.config.icpc["cascade_levels"] == callback.calibration.chosen.levels


def test_an_accuracy_floor_is_passed_to_the_calibration(tmp_path):
    callback = ICPCCallback(calibrate={"min_accuracy": 0.0})  # every setting qualifies: the cheapest is chosen
    trainer = make_trainer(tmp_path, callback, eval_dataset=dataset(12, seed=2))
    trainer.train()
    assert callback.calibration.chosen.cost == min(p.cost for p in callback.calibration.points)


def test_attach_calibrates_without_evaluations_during_training(tmp_path):
    evaluation = dataset(12, seed=3)
    callback = ICPCCallback()
    trainer = make_trainer(tmp_path, callback)
    trainer.eval_dataset = evaluation
    callback.attach(trainer)
    trainer.train()
    assert callback.calibration is not None and len(callback.calibration.level_accuracies) == 3
    assert trainer.model.config.icpc["cascade_levels"] == callback.calibration.chosen.levels
    assert any("icpc/calibrated_speedup_est" in h for h in trainer.state.log_history)


def test_without_an_eval_set_it_warns_once_and_serves_full_size(tmp_path, caplog):
    trainer = make_trainer(tmp_path, ICPCCallback())
    with caplog.at_level(logging.WARNING, logger="icpc_hf"):
        trainer.train()
        trainer.train()
    warnings = [r for r in caplog.records if "no evaluation set" in r.getMessage()]
    assert len(warnings) == 1
    assert trainer.model.config.icpc["cascade_levels"] == [1.0]
    assert icpc_settings(trainer.model).cascade_levels == [1.0]
    assert not any("icpc/calibrated_cost" in h for h in trainer.state.log_history)


def test_calibrate_false_leaves_the_config_untouched(tmp_path):
    callback = ICPCCallback(calibrate=False)
    trainer = make_trainer(tmp_path, callback, eval_dataset=dataset(12, seed=1))
    before = json.dumps(trainer.model.config.icpc, sort_keys=True)
    trainer.train()
    assert json.dumps(trainer.model.config.icpc, sort_keys=True) == before
    assert callback.calibration is None


def test_an_eval_set_without_labels_is_refused(tmp_path):
    trainer = make_trainer(
        tmp_path, ICPCCallback(), eval_dataset=dataset(12, seed=1, label_key="target"), eval_strategy="no"
    )
    trainer.pop_callback(ICPCCallback).attach(trainer)
    with pytest.raises(ValueError, match="`label` or `labels`.*calibrate=False"):
        trainer.train()


def test_one_level_to_calibrate_is_refused_before_training(tmp_path):
    one_level = ICPCCallback(calibrate={"max_accuracy_loss": 0.0, "reference": "best_level", "levels": [1.0]})
    trainer = make_trainer(tmp_path, one_level, eval_dataset=dataset(12, seed=1))
    with pytest.raises(ValueError, match="one level.*nothing to calibrate"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_a_full_size_cascade_is_calibrated_over_the_training_levels(tmp_path):
    callback = ICPCCallback()
    trainer = make_trainer(tmp_path, callback, eval_dataset=dataset(12, seed=1), cascade_levels=[1.0])
    trainer.train()
    assert callback.calibration.levels == sorted(LEVELS)
