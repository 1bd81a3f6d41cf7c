"""CascadeShipping, without a Trainer: the calibration target, the evaluation set it reads, and the cascade that
ships (calibrated, or full size alone)."""

import logging
from types import SimpleNamespace

import pytest
import torch
from helpers import tiny_vit
from torch.utils.data import IterableDataset

from icpc_hf import ICPCCallback, ICPCConfig, patch_model
from icpc_hf.patching import icpc_settings
from icpc_hf.training.shipping import (
    CascadeShipping,
    calibration_target,
    dataset_description,
    eval_features,
    labels_of,
    serve_full_size,
)

LEVELS = [0.5, 0.75, 1.0]


def dataset(count, seed=1, label_key="label"):
    generator = torch.Generator().manual_seed(seed)
    return [{"pixel_values": torch.randn(3, 32, 32, generator=generator), label_key: i % 3} for i in range(count)]


def patched(cascade_levels=LEVELS):
    return patch_model(tiny_vit(), ICPCConfig(levels=LEVELS, cascade_levels=cascade_levels, seed=1))


def loader(features):
    return SimpleNamespace(dataset=features)


def test_targets_by_name_or_keywords():
    assert (
        calibration_target("best_level")
        == calibration_target(True)
        == {"max_accuracy_loss": 0.0, "reference": "best_level"}
    )
    assert calibration_target(False) is None
    target = {"target_speedup": 2.0, "cost": "flops"}
    assert calibration_target(target) == target and calibration_target(target) is not target


@pytest.mark.parametrize(
    "target",
    [
        "fastest",
        {"max_accuracy_loss": 0.01, "speed": 2},
        None,
        {"max_accuracy_loss": 0.01, "target_speedup": 2.0},
        {"target_speedup": -1},
        {"min_accuracy": 1.2},
    ],
)
def test_unknown_or_impossible_targets_are_refused(target):
    with pytest.raises(ValueError, match="calibrat|target|must be positive|accuracy in"):
        calibration_target(target)
    with pytest.raises(ValueError, match="calibrat|target|must be positive|accuracy in"):
        ICPCCallback(calibrate=target)


def test_labels_come_from_label_or_labels_and_must_be_class_indices():
    assert labels_of(dataset(4)) == [0, 1, 2, 0]
    assert labels_of([{"labels": torch.tensor(2)}]) == [2]
    with pytest.raises(ValueError, match="`label` or `labels`.*calibrate=False"):
        labels_of(dataset(4, label_key="target"))
    with pytest.raises(ValueError, match="one class index per evaluation sample"):
        labels_of([{"label": [0, 1]}])


def test_labels_of_a_datasets_column_run_no_transform():
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_dict({"x": [1, 2, 3], "label": [2, 0, 1]})
    data.set_transform(lambda batch: pytest.fail("the transform ran"))
    assert labels_of(data) == [2, 0, 1]
    with pytest.raises(ValueError, match="`label` or `labels`"):
        labels_of(data.remove_columns("label"))


def test_the_card_names_a_hub_dataset_and_no_local_file():
    hub = SimpleNamespace(info=SimpleNamespace(dataset_name="beans"), config_name="default", split="validation")
    assert dataset_description(hub) == {
        "dataset_type": "beans",
        "dataset_name": "beans",
        "dataset_config": "default",
        "dataset_split": "validation",
    }
    assert dataset_description(SimpleNamespace(builder_name="csv")) == {}
    assert dataset_description(dataset(2)) == {}


class Stream(IterableDataset):
    def __iter__(self):
        return iter(dataset(2))


def test_the_evaluation_set_is_the_trainers_else_the_last_evaluated():
    evaluated = dataset(3)
    assert eval_features(None, None) is None
    assert eval_features(None, loader(evaluated)) is evaluated
    own = dataset(5)
    trainer = SimpleNamespace(eval_dataset=own, get_eval_dataloader=lambda: loader(own))
    assert eval_features(trainer, loader(evaluated)) is own
    several = SimpleNamespace(eval_dataset={"a": own, "b": evaluated})
    assert eval_features(several, loader(evaluated)) is evaluated
    with pytest.raises(ValueError, match="several evaluation sets \\(a, b\\)"):
        eval_features(several, None)
    with pytest.raises(ValueError, match="reads the evaluation set by index.*Stream"):
        eval_features(None, loader(Stream()))


def test_serve_full_size_repatches_only_a_cascade():
    model = patched()
    serve_full_size(model)
    assert icpc_settings(model).cascade_levels == [1.0] and model.config.icpc["cascade_levels"] == [1.0]
    serve_full_size(model)
    assert icpc_settings(model).cascade_levels == [1.0]


def test_calibration_off_keeps_the_cascade_and_says_why():
    model = patched()
    shipping = CascadeShipping(calibrate=False)
    assert shipping.ship(model, None, loader(dataset(6)), None) is None
    assert icpc_settings(model).cascade_levels == LEVELS and "turned off" in shipping.missing


def test_without_an_evaluation_set_full_size_ships_with_one_warning(caplog):
    model = patched()
    shipping = CascadeShipping()
    with caplog.at_level(logging.WARNING):
        assert shipping.ship(model, None, None, None) is None
        assert shipping.ship(model, None, None, None) is None
    assert len([r for r in caplog.records if "no evaluation set" in r.getMessage()]) == 1
    assert icpc_settings(model).cascade_levels == [1.0] and "no evaluation set" in shipping.missing
    assert shipping.calibration is None


def test_a_calibrated_cascade_is_applied_and_its_figures_returned():
    model = patched()
    shipping = CascadeShipping({"min_accuracy": 0.0, "cost": "flops"})  # every setting qualifies: the cheapest
    figures = shipping.ship(model, None, loader(dataset(12)), None)
    chosen = shipping.calibration.chosen
    assert chosen.cost == min(p.cost for p in shipping.calibration.points)
    assert icpc_settings(model).cascade_levels == chosen.levels == model.config.icpc["cascade_levels"]
    assert figures["icpc/calibrated_cost"] == chosen.cost
    assert figures["icpc/calibrated_speedup_est"] == pytest.approx(1 / chosen.cost)
    assert figures["icpc/calibrated_levels"] == ", ".join(f"{lv:g}" for lv in chosen.levels)
    assert set(figures) == {
        "icpc/calibrated_accuracy",
        "icpc/calibrated_cost",
        "icpc/calibrated_speedup_est",
        "icpc/calibrated_levels",
        "icpc/calibrated_thresholds",
        "icpc/full_size_accuracy",
        "icpc/best_level_accuracy",
    }


def test_an_unmet_target_ships_full_size(caplog):
    model = patched()
    shipping = CascadeShipping({"target_speedup": 100.0, "cost": "flops"})
    with caplog.at_level(logging.WARNING):
        assert shipping.ship(model, None, loader(dataset(6)), None) is None
    assert shipping.calibration is not None and shipping.calibration.chosen is None
    assert icpc_settings(model).cascade_levels == [1.0]
    assert any("No cascade setting met" in r.getMessage() for r in caplog.records)


def test_one_level_to_calibrate_is_refused_at_the_end_too():
    with pytest.raises(ValueError, match="one level.*nothing to calibrate"):
        CascadeShipping({"min_accuracy": 0.0, "levels": [1.0]}).ship(patched(), None, loader(dataset(6)), None)
