import json
import shutil
import subprocess

import pytest
import torch
from helpers import tiny_image_processor, tiny_vit

from icpc_hf import ICPCConfig, patch_model, run_cascade
from icpc_hf.training.calibrate import calibrate_thresholds, main, replay_cascade


@pytest.fixture
def setup():
    model = patch_model(tiny_vit(), ICPCConfig(levels=[0.5, 0.75, 1.0], cascade_levels=[0.5, 0.75, 1.0]))
    features = [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(24)]
    return model, features, [f["label"] for f in features]


def test_replay_matches_the_real_cascade(setup):
    model, features, _ = setup
    singles = [run_cascade(model, features, None, levels=[lv]) for lv in (0.5, 0.75, 1.0)]
    full = singles[0].full_flops
    for thresholds in ([0.4, 0.4], [0.36, 0.5], [1.0, 1.0], [0.0, 0.0]):
        real = run_cascade(model, features, None, thresholds=thresholds)
        predictions, spent = replay_cascade(
            [s.probabilities for s in singles], [s.spent_flops / full for s in singles], thresholds
        )
        assert torch.equal(predictions, real.predictions)
        assert torch.allclose(spent, real.spent_flops / real.full_flops)


def test_targets_pick_the_cheapest_or_most_accurate_setting(setup):
    model, features, labels = setup
    lossless = calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0)
    assert lossless.chosen.accuracy >= lossless.full_accuracy
    assert all(p.cost >= lossless.chosen.cost for p in lossless.points if p.accuracy >= lossless.full_accuracy)
    fast = calibrate_thresholds(model, features, None, labels, target_speedup=2.0, cost="flops")  # reachable
    assert fast.chosen.cost <= 0.5
    frontier = fast.frontier()
    assert all(a.cost <= b.cost and a.accuracy < b.accuracy for a, b in zip(frontier, frontier[1:]))


def test_min_accuracy_picks_the_cheapest_setting_at_least_that_accurate(setup):
    model, features, labels = setup
    singles = calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0).level_accuracies
    floor = sorted(singles)[len(singles) // 2]  # an accuracy some settings reach and some do not
    calibration = calibrate_thresholds(model, features, None, labels, min_accuracy=floor)
    assert calibration.chosen.accuracy >= floor
    assert all(p.cost >= calibration.chosen.cost for p in calibration.points if p.accuracy >= floor)
    perfect = calibrate_thresholds(model, features, None, labels, min_accuracy=1.0)
    assert perfect.chosen is None or perfect.chosen.accuracy == 1.0


def test_a_target_is_required(setup):
    model, features, labels = setup
    with pytest.raises(ValueError, match="exactly one target"):
        calibrate_thresholds(model, features, None, labels)


def test_cli_calibrates_a_saved_model_on_a_saved_dataset(setup, tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    model, features, labels = setup
    model.save_pretrained(tmp_path / "model")
    tiny_image_processor().save_pretrained(tmp_path / "model")
    data = datasets.Dataset.from_dict(
        {"pixel_values": [f["pixel_values"].numpy() for f in features], "label": labels}
    ).with_format("torch")
    data.save_to_disk(str(tmp_path / "data"))
    main(
        [
            str(tmp_path / "model"),
            str(tmp_path / "data"),
            "--target-speedup",
            "1.5",
            "--plot",
            str(tmp_path / "frontier.png"),
            "--save",
            "--cost",
            "flops",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert (
        report["cost_unit"] == "flops"
        and report["chosen"]["cost"] <= 1 / 1.5
        and (tmp_path / "frontier.png").stat().st_size > 1000
    )
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["icpc"]["thresholds"] == report["chosen"]["thresholds"]


def test_level_subsets_are_searched_and_full_size_alone_is_a_candidate(setup):
    model, features, labels = setup
    calibration = calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0, cost="flops")
    full_only = [p for p in calibration.points if p.levels == [1.0]]
    assert len(full_only) == 1 and full_only[0].cost == pytest.approx(1.0)
    assert full_only[0].accuracy == pytest.approx(calibration.full_accuracy)
    assert calibration.chosen.cost <= 1.0 + 1e-9  # never dearer than not cascading
    skipping = next(p for p in calibration.points if p.levels == [0.5, 1.0] and p.thresholds == [0.4])
    real = run_cascade(model, features, None, levels=[0.5, 1.0], thresholds=[0.4])
    assert skipping.accuracy == pytest.approx(float((real.predictions == torch.tensor(labels)).float().mean()))
    assert skipping.cost == pytest.approx(float((real.spent_flops / real.full_flops).mean()))


def test_apply_installs_the_chosen_levels(setup):
    model, features, labels = setup
    calibration = calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0)
    calibration.chosen = next(p for p in calibration.points if p.levels == [1.0])
    calibration.apply(model)
    assert model.config.icpc["cascade_levels"] == [1.0]
    result = run_cascade(model, features, None)
    assert result.levels == [1.0] and result.summary()["flops_ratio"] == pytest.approx(1.0)
    calibration.chosen = next(p for p in calibration.points if p.levels == [0.5, 1.0] and p.thresholds == [0.4])
    calibration.apply(model)
    assert model.config.icpc["cascade_levels"] == [0.5, 1.0] and model.config.icpc["thresholds"] == [0.4]


def test_the_installed_command_runs_the_cli():
    command = shutil.which("icpc-calibrate")
    assert command is not None, "`pip install -e .` installs the icpc-calibrate command (setup.py entry_points)"
    help_text = subprocess.run([command, "--help"], capture_output=True, text=True, check=True).stdout
    assert help_text.startswith("usage: icpc-calibrate") and "--target-speedup" in help_text


def test_best_level_reference_is_the_most_accurate_single_level(setup):
    model, features, labels = setup
    calibration = calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0, reference="best_level")
    singles = [run_cascade(model, features, None, levels=[lv]).accuracy(labels) for lv in (0.5, 0.75, 1.0)]
    assert calibration.level_accuracies == pytest.approx(singles)
    assert calibration.reference_accuracy == pytest.approx(max(singles)) == calibration.best_level_accuracy
    assert calibration.chosen.accuracy >= max(singles) - 1e-12
    assert all(p.cost >= calibration.chosen.cost for p in calibration.points if p.accuracy >= max(singles) - 1e-12)
    full = calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0)
    assert full.reference_accuracy == pytest.approx(singles[-1]) and full.full_accuracy == pytest.approx(singles[-1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(levels=[1.0], max_accuracy_loss=0.0), "at least two cascade levels"),
        (dict(max_accuracy_loss=0.0, reference="median"), "Unknown `reference`"),
        (dict(target_speedup=2.0, reference="best_level"), "applies to `max_accuracy_loss` only"),
        (dict(min_accuracy=0.9, reference="best_level"), "applies to `max_accuracy_loss` only"),
        (dict(min_accuracy=1.5), "accuracy in \\[0, 1\\]"),
        (dict(min_accuracy=0.5, target_speedup=2.0), "exactly one target"),
    ],
)
def test_impossible_calibrations_are_refused(setup, kwargs, message):
    model, features, labels = setup
    with pytest.raises(ValueError, match=message):
        calibrate_thresholds(model, features, None, labels, **kwargs)


def test_default_levels_include_every_training_level_and_cascades_stay_short():
    model = patch_model(tiny_vit(), ICPCConfig(levels=[0.375, 0.5, 0.625, 0.75, 1.0], cascade_levels=[0.5, 1.0]))
    features = [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(12)]
    labels = [f["label"] for f in features]
    calibration = calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0, candidates=(0.0, 0.5, 1.0))
    assert calibration.levels == [0.375, 0.5, 0.625, 0.75, 1.0]
    assert max(len(p.levels) for p in calibration.points) == 3  # at most max_steps levels in one cascade
    assert all(p.levels[-1] == 1.0 for p in calibration.points)
    assert any(p.levels == [0.625, 1.0] for p in calibration.points)  # a level the stored cascade skipped
    two = calibrate_thresholds(
        model, features, None, labels, max_accuracy_loss=0.0, candidates=(0.0, 0.5, 1.0), max_steps=2
    )
    assert max(len(p.levels) for p in two.points) == 2
    with pytest.raises(ValueError, match="max_steps"):
        calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0, max_steps=0)


def test_measured_time_sets_the_cost_a_calibration_minimises(setup, monkeypatch):
    """Small levels cost what their passes took, not their share of FLOPs: level 0.5 (a quarter of the patches)
    measured at 0.8 of a full pass costs 0.8, so a cascade through it no longer looks 4x cheaper than it is."""
    import icpc_hf.training.calibration.timing as calibrate

    model, features, labels = setup
    monkeypatch.setattr(
        calibrate,
        "level_seconds",
        lambda run, levels, warmup: [(run(lv), {0.5: 0.8, 0.75: 0.9, 1.0: 1.0}[lv])[1] for lv in levels],
    )
    measured = calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0)
    estimated = calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0, cost="flops")
    assert measured.cost_unit == "time" and estimated.cost_unit == "flops"

    def alone(calibration):  # every sample answered by the first level (threshold 0), or full size alone
        return {p.levels[0]: p.cost for p in calibration.points if len(p.levels) == 1 or p.thresholds == [0.0]}

    assert alone(measured) == pytest.approx({0.5: 0.8, 0.75: 0.9, 1.0: 1.0})
    assert alone(estimated)[0.5] < 0.5 < alone(measured)[0.5]
    with pytest.raises(ValueError, match="Unknown `cost`"):
        calibrate_thresholds(model, features, None, labels, max_accuracy_loss=0.0, cost="watts")


def test_level_seconds_times_each_level_after_a_warm_up(monkeypatch):
    import icpc_hf.training.calibration.timing as calibrate

    clock = {"now": 0.0}
    monkeypatch.setattr(calibrate.time, "perf_counter", lambda: clock["now"])
    ran = []

    def run_level(level):
        ran.append(level)
        clock["now"] += 3.0 * level

    seconds = calibrate.level_seconds(run_level, [0.5, 1.0], warmup=lambda: ran.append("warm-up"))
    assert ran == ["warm-up", 0.5, 1.0] and seconds == pytest.approx([1.5, 3.0])
