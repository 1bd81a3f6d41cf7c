"""The `adaptive` schedule: a floor of the levels drawn that evaluations during training move."""

import json
import os

import pytest
import torch
from helpers import InputRecorder, StopAt, quiet_cpu_args, tiny_vit
from transformers import Trainer

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, LevelPlan, patch_model
from icpc_hf.training.plan import epoch_distribution
from icpc_hf.training.schedules.adaptive import Adaptive, watched_metric

FOUR = [0.25, 0.5, 0.75, 1.0]


def test_the_floor_rises_on_a_new_best_and_falls_otherwise_within_the_levels():
    args = quiet_cpu_args("unused")
    floor = Adaptive(ICPCConfig(schedule="adaptive"))
    moves = []
    for loss in [1.0, 0.9, 0.8, 0.7, 0.75, 0.72, 0.6, 0.9, 0.9, 0.9, 0.9]:
        floor.evaluated(args, {"eval_loss": loss}, num_levels=4)
        moves.append(floor.current)
    assert moves == [1, 2, 3, 3, 2, 1, 2, 1, 0, 0, 0]
    assert floor.best == 0.6


def test_the_floor_follows_metric_for_best_model_in_its_direction():
    args = quiet_cpu_args("unused", metric_for_best_model="accuracy", eval_strategy="epoch", save_strategy="epoch")
    assert watched_metric(args) == ("eval_accuracy", True)
    floor = Adaptive(ICPCConfig(schedule="adaptive"))
    for accuracy in [0.5, 0.6, 0.55]:
        floor.evaluated(args, {"eval_accuracy": accuracy, "eval_loss": 0.1}, num_levels=3)
    assert floor.current == 1 and floor.best == 0.6
    with pytest.raises(ValueError, match="metric_for_best_model"):
        floor.evaluated(args, {"eval_loss": 0.1}, num_levels=3)


def test_a_repeated_epoch_keeps_the_floor_it_began_with_and_the_state_round_trips_through_json():
    floor = Adaptive(ICPCConfig(schedule="adaptive"))
    floor.begin_stage(0)
    floor.evaluated(quiet_cpu_args("unused"), {"eval_loss": 1.0}, num_levels=4)
    floor.begin_stage(0)
    floor.begin_stage(1)
    assert floor.epoch_floors == {0: 0, 1: 1}
    restored = Adaptive(ICPCConfig(schedule="adaptive"))
    restored.load_state_dict(json.loads(json.dumps(floor.state_dict())))  # keys become strings
    assert restored.state_dict() == floor.state_dict() == {"floor": 1, "best": 1.0, "epoch_floors": {0: 0, 1: 1}}


def test_adaptive_draws_from_the_floor_up_with_or_without_a_known_length():
    assert epoch_distribution(FOUR, None, "adaptive", 0, None, floor=2) == ([0.75, 1.0], None)
    assert epoch_distribution(FOUR, None, "adaptive", 3, 10, floor=9) == ([1.0], None)
    assert epoch_distribution(FOUR, [0, 1, 2, 3], "adaptive", 0, 10, floor=1) == ([0.75, 1.0], [2, 3])
    plan = LevelPlan(ICPCConfig(levels=FOUR, schedule="adaptive"))
    assert set(plan.epoch_levels(0, 200)) == set(FOUR)
    plan.schedule.epoch_floors[1] = 2
    assert set(plan.epoch_levels(1, 200)) == {0.75, 1.0}


def dataset(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [{"pixel_values": torch.randn(3, 32, 32, generator=generator), "label": i % 3} for i in range(count)]


def adaptive_run(tmp_path, epochs=4, resume=None, stop_at=None, **overrides):
    """A tiny ViT trained with the adaptive schedule and evaluated every epoch; the trainer, callback and the sides
    of the images the model trained on, epoch by epoch."""
    icpc = ICPCConfig(levels=FOUR, schedule="adaptive", seed=2)
    model = patch_model(tiny_vit(), icpc)
    trained = InputRecorder(model)
    callback = ICPCCallback(calibrate=False, publish=False)
    values = dict(per_device_train_batch_size=8, num_train_epochs=epochs, eval_strategy="epoch", seed=3)
    trainer = Trainer(
        model=model,
        args=quiet_cpu_args(tmp_path, **{**values, **overrides}),
        train_dataset=dataset(48),
        eval_dataset=dataset(24, seed=1),
        data_collator=ICPCDataCollator(None, icpc),
        callbacks=[callback] + ([StopAt(stop_at)] if stop_at else []),
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer, callback, list(trained.sides)


def test_a_trainer_run_moves_the_floor_by_its_evaluations(tmp_path):
    trainer, callback, sides = adaptive_run(tmp_path, learning_rate=3e-3)
    losses = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
    assert len(losses) == 4
    expected, floor, best = [0], 0, None
    for loss in losses[:-1]:
        floor = min(3, floor + 1) if best is None or loss < best else max(0, floor - 1)
        best = loss if best is None or loss < best else best
        expected.append(floor)
    assert [callback.levelled_collate.plan.schedule.epoch_floors[epoch] for epoch in range(4)] == expected
    assert expected[1] == 1  # the first evaluation is always a new best
    per_epoch = [sides[6 * epoch : 6 * epoch + 6] for epoch in range(4)]  # 6 batches per epoch
    for epoch, epoch_sides in enumerate(per_epoch):
        assert min(epoch_sides) >= 32 * FOUR[expected[epoch]]
    assert min(per_epoch[0]) < 32  # the first epoch draws every level


def test_a_resumed_run_continues_the_floor_of_its_checkpoint(tmp_path):
    full, full_callback, full_sides = adaptive_run(tmp_path / "full", learning_rate=3e-3)
    _, _, _ = adaptive_run(tmp_path / "cut", learning_rate=3e-3, save_strategy="epoch", stop_at=12)
    checkpoint = os.path.join(tmp_path / "cut", "checkpoint-12")
    saved = json.load(open(os.path.join(checkpoint, "trainer_state.json")))["stateful_callbacks"]["ICPCCallback"]
    assert (
        saved["attributes"]["schedule_state"]["floor"] == full_callback.levelled_collate.plan.schedule.epoch_floors[2]
    )
    resumed, callback, sides = adaptive_run(
        tmp_path / "cut", learning_rate=3e-3, save_strategy="epoch", resume=checkpoint
    )
    assert [callback.levelled_collate.plan.schedule.epoch_floors[epoch] for epoch in (2, 3)] == [
        full_callback.levelled_collate.plan.schedule.epoch_floors[epoch] for epoch in (2, 3)
    ]
    assert sides == full_sides[12:]  # epochs 2 and 3, batch for batch


def test_adaptive_without_evaluations_during_training_refuses_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="eval_strategy='epoch'"):
        adaptive_run(tmp_path, epochs=1, eval_strategy="no")
