import json

import pytest

from icpc_hf import ICPCConfig, ICPCDataCollator, LevelPlan


def test_defaults_are_valid_and_unresolved():
    config = ICPCConfig()
    assert config.levels is None and config.position_strategy is None and not config.is_resolved


def test_levels_sorted_and_deduplicated():
    assert ICPCConfig(levels=[1.0, 0.5, 0.5]).levels == [0.5, 1.0]


@pytest.mark.parametrize("levels", [[0.0, 1.0], [1.5], [-0.2], []])
def test_levels_outside_unit_interval_or_empty_raise(levels):
    with pytest.raises(ValueError, match="levels"):
        ICPCConfig(levels=levels)


def test_pixel_sizes_as_levels_raise_with_fix():
    with pytest.raises(ValueError, match="0.5"):
        ICPCConfig(levels=[112, 224])


@pytest.mark.parametrize("thresholds", [1.2, -0.1, [0.5, 2.0]])
def test_thresholds_outside_unit_interval_raise(thresholds):
    with pytest.raises(ValueError, match="thresholds"):
        ICPCConfig(thresholds=thresholds)


def test_unknown_strategy_raises_and_lists_choices():
    with pytest.raises(ValueError, match="crop, stride, interpolate"):
        ICPCConfig(position_strategy="nearest")


def test_weights_must_match_levels_where_training_begins():
    with pytest.raises(ValueError, match="one weight per level"):
        ICPCDataCollator(None, ICPCConfig(levels=[0.5, 1.0], level_weights=[1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        LevelPlan(ICPCConfig(levels=[0.5, 1.0], level_weights=[-1.0, 1.0]))


def test_what_the_settings_accept_does_not_depend_on_what_was_imported(tmp_path):
    """config.py alone, as a served folder holds it (no training code, no text module), accepts what it accepts
    within icpc_hf: the fields it does not check are their readers' to check (a modality's, training's)."""
    import shutil
    import subprocess
    import sys

    import icpc_hf.config

    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "__init__.py").write_text("")
    shutil.copy(icpc_hf.config.__file__, tmp_path / "served" / "config.py")
    probe = (
        "import sys; from served.config import ICPCConfig\n"
        "for values in ({'level_weights': [-1.0, 1.0], 'schedule': 'cosine'}, {'text_scorer': 'tfidf'}, "
        "{'position_strategy': 'nearest'}, {'thresholds': 2.0}):\n"
        "    try:\n        ICPCConfig(**values); print('accepted')\n"
        "    except (TypeError, ValueError) as e:\n        print(type(e).__name__)\n"
        "print([m for m in sys.modules if m.startswith('icpc_hf')])"
    )
    alone = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert alone.stdout.splitlines() == ["accepted", "accepted", "ValueError", "ValueError", "[]"]
    ICPCConfig(level_weights=[-1.0, 1.0], schedule="cosine")  # icpc_hf imported: the same answers
    ICPCConfig(text_scorer="tfidf")
    with pytest.raises(ValueError, match="Unknown `position_strategy`"):
        ICPCConfig(position_strategy="nearest")


def test_json_round_trip():
    config = ICPCConfig(levels=[0.5, 0.75, 1.0], position_strategy="stride", thresholds=[0.8, 0.9], seed=3)
    restored = ICPCConfig.from_json_string(json.dumps(config.to_dict()))
    assert restored == config


def test_thresholds_per_cascade_level():
    config = ICPCConfig(thresholds=0.7)
    assert config.thresholds_for([0.5, 0.75, 1.0]) == [0.7, 0.7, 0.0]
    assert config.thresholds_for([0.5, 1.0], [0.6]) == [0.6, 0.0]
    with pytest.raises(ValueError, match="cascade levels"):
        config.thresholds_for([0.25, 0.5, 1.0], [0.6, 0.7, 0.8, 0.9])


def test_unknown_keys_are_dropped_with_a_warning(caplog):
    restored = ICPCConfig.from_dict({"levels": [0.5, 1.0], "from_the_future": 1})
    assert restored.levels == [0.5, 1.0]
    assert "from_the_future" in caplog.text


def test_settings_saved_before_schedules_existed_keep_their_constant_schedule():
    saved = {"levels": [0.5, 1.0], "model_type": "vit", "geometry": {"full_grid": [8, 8]}}
    assert ICPCConfig.from_dict(saved).schedule == "constant"
    assert ICPCConfig.from_dict({"levels": [0.5, 1.0]}).schedule is None  # the modality's, once patched
    assert ICPCConfig().schedule is None
