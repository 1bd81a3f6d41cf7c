"""Every registered schedule, through the same checks: what it draws at every stage, that a resumed run draws the
same, and that a stream is refused where the schedule needs passes over the data."""

import json
from types import SimpleNamespace

import pytest
import torch
from helpers import tiny_vit
from torch.utils.data import DataLoader, IterableDataset

from icpc_hf import ICPCConfig, ICPCDataCollator, LevelPlan, patch_model
from icpc_hf.training.levels import RunLevels
from icpc_hf.training.schedules import SCHEDULES, Schedule, register, schedule_class

SIX = [3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8, 1.0]
WEIGHTS = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
STAGES = 12
LOSSES = [1.0, 0.9, 0.95, 0.8, 0.85, 0.9, 0.7, 0.75, 0.8, 0.85, 0.9, 0.6]
"""Evaluation losses, one per stage: new bests and setbacks, so a schedule moved by evaluations moves both ways."""
ARGS = SimpleNamespace(metric_for_best_model=None, greater_is_better=None, eval_strategy="epoch")


def settings(name, weights=None):
    return ICPCConfig(levels=SIX, level_weights=weights, cascade_levels=[0.5, 0.75, 1.0], schedule=name, seed=3)


def weightings(name):
    """The level weights a schedule's checks accept: none, and the hand-picked ones where it uses them."""
    try:
        schedule_class(name).check(settings(name, WEIGHTS))
    except ValueError:
        return [None]
    return [None, WEIGHTS]


def run(plan, stages, losses=LOSSES):
    """Drive a plan as ICPCCallback does: each stage begins, then is evaluated."""
    for stage in stages:
        plan.schedule.begin_stage(stage)
        plan.schedule.evaluated(ARGS, {"eval_loss": losses[stage]}, len(SIX))


def test_the_registry_holds_every_schedule_by_its_name():
    assert sorted(SCHEDULES) == [
        "adaptive",
        "anchored",
        "bookends",
        "constant",
        "progressive",
        "progressive_bookends",
        "progressive_resizing",
    ]
    assert all(issubclass(cls, Schedule) and cls.name == name for name, cls in SCHEDULES.items())
    with pytest.raises(ValueError, match="taken"):
        register(SCHEDULES["constant"])
    with pytest.raises(ValueError, match="Unknown `schedule` 'cosine': use one of adaptive, anchored, bookends"):
        schedule_class("cosine")


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("num_stages", [STAGES, None], ids=["known length", "unknown length"])
def test_every_stage_draws_a_valid_distribution(name, num_stages):
    for weights in weightings(name):
        plan = LevelPlan(settings(name, weights), num_stages)
        for stage in range(STAGES):
            plan.schedule.begin_stage(stage)
            levels, drawn_weights = plan.distribution(stage)
            assert levels and levels == sorted(set(levels)) and set(levels) <= set(SIX), (stage, levels)
            if drawn_weights is not None:
                assert len(drawn_weights) == len(levels) and sum(drawn_weights) > 0 and min(drawn_weights) >= 0
                assert drawn_weights == [WEIGHTS[SIX.index(level)] for level in levels]  # weights follow levels
            assert set(plan.epoch_levels(stage, 60)) <= set(levels)
            plan.schedule.evaluated(ARGS, {"eval_loss": LOSSES[stage]}, len(SIX))


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_last_epochs_uncompressed_hold_for_every_schedule(name):
    plan = LevelPlan(ICPCConfig(levels=SIX, schedule=name, uncompressed_last_epochs=2), STAGES)
    assert [plan.distribution(stage) for stage in (10, 11)] == [([1.0], None)] * 2
    assert min(plan.distribution(0)[0]) < 1.0


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_resumed_schedule_draws_the_same_levels(name):
    full = LevelPlan(settings(name), STAGES)
    run(full, range(STAGES))
    cut = LevelPlan(settings(name), STAGES)
    run(cut, range(5))
    saved = json.loads(json.dumps(cut.schedule.state_dict()))  # checkpoints hold it as JSON
    resumed = LevelPlan(settings(name), STAGES)
    resumed.schedule.load_state_dict(saved)
    assert resumed.schedule.state_dict() == cut.schedule.state_dict()
    run(resumed, range(5, STAGES))
    assert resumed.schedule.state_dict() == full.schedule.state_dict()
    for stage in range(STAGES):
        assert resumed.distribution(stage) == full.distribution(stage)
        assert resumed.epoch_levels(stage, 40) == full.epoch_levels(stage, 40)


class Stream(IterableDataset):
    def __iter__(self):
        return iter([{"pixel_values": torch.randn(3, 32, 32), "label": 0}] * 8)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_stream_is_refused_only_by_a_schedule_that_needs_passes(name):
    icpc = ICPCConfig(levels=[0.5, 1.0], schedule=name)
    patch_model(tiny_vit(), icpc)
    stream = DataLoader(Stream(), batch_size=4, collate_fn=ICPCDataCollator(None, icpc))
    state = SimpleNamespace(global_step=0, num_train_epochs=1, max_steps=6, epoch=0, stateful_callbacks={})
    levels = RunLevels()
    if schedule_class(name).needs_length:
        with pytest.raises(ValueError, match=f"`{name}` ICPC schedule moves between passes.*dataset with a length"):
            levels.begin(icpc, state, stream, "ICPCCallback")
    else:
        levels.begin(icpc, state, stream, "ICPCCallback")
        assert levels.stream and levels.plan.num_stages == 6  # a stream's plan moves by optimizer steps


def test_the_previous_module_of_the_plan_still_answers_with_a_warning():
    import importlib
    import sys

    sys.modules.pop("icpc_hf.training.schedule", None)
    with pytest.warns(FutureWarning, match="icpc_hf.training.schedule has moved.*icpc_hf.training.plan"):
        old = importlib.import_module("icpc_hf.training.schedule")
    assert old.LevelPlan is LevelPlan and old.schedule_class is schedule_class
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = old.Nothing
