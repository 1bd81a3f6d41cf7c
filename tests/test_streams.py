"""Streamed datasets (iterable, no length): the Trainer and a plain Accelerate loop, with and without DataLoader
workers, resuming mid-stream, and the bad inputs a stream brings."""

import pytest
import torch
from accelerate import Accelerator
from helpers import InputRecorder, StopAt, quiet_cpu_args, tiny_vit
from torch.utils.data import DataLoader
from transformers import Trainer

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, LevelPlan, patch_model

datasets = pytest.importorskip("datasets")


def rows(count):
    generator = torch.Generator().manual_seed(0)
    return [{"pixel_values": torch.randn(3, 32, 32, generator=generator).numpy(), "label": i % 3} for i in range(count)]


def stream(count, shards=4):
    return datasets.Dataset.from_list(rows(count)).to_iterable_dataset(num_shards=shards).with_format("torch")


def planned(plan, steps_per_pass, passes):
    """A stream's levels: stage = the optimizer step the batch belongs to, drawn per (pass, position)."""
    return [plan.level(epoch * steps_per_pass + p, epoch, p) for epoch in range(passes) for p in range(steps_per_pass)]


def train(tmp_path, data, icpc, workers=0, max_steps=12, callbacks=(), resume=None, save_steps=None):
    torch.manual_seed(0)
    model = patch_model(tiny_vit(), icpc)
    trained = InputRecorder(model)
    callback = ICPCCallback()
    args = quiet_cpu_args(
        str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=max_steps,
        logging_steps=2,
        dataloader_num_workers=workers,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=ICPCDataCollator(None, icpc),
        callbacks=[callback, *callbacks],
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer, callback, trained


@pytest.mark.parametrize("workers", [0, 2])
def test_trainer_trains_from_a_stream_at_the_planned_levels(tmp_path, workers):
    icpc = ICPCConfig(levels=[0.5, 0.75, 1.0], seed=3)  # the default progressive schedule, over the 12 steps
    trainer, callback, trained = train(tmp_path, stream(24), icpc, workers=workers)  # 6 batches a pass: 2 passes
    expected = planned(callback.levelled_collate.plan, 6, 2)
    assert [side / 32 for side in trained.sides] == expected
    assert min(expected[:4]) == 0.5 and set(expected[-4:]) == {1.0}  # the schedule moved with the steps
    assert callback.plan_record["num_steps"] == 12
    logged = [h for h in trainer.state.log_history if "icpc/token_ratio" in h]
    assert logged and min(h["icpc/token_ratio"] for h in logged) < 1


@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_resumed_mid_stream_goes_on_with_the_same_plan(tmp_path, workers):
    icpc = lambda: ICPCConfig(levels=[0.5, 0.75, 1.0], seed=11, schedule="constant")  # noqa: E731
    _, _, uninterrupted = train(tmp_path / "a", stream(60), icpc(), workers=workers)
    assert len(uninterrupted.batches) == 12 and len(set(uninterrupted.sides)) > 1
    _, _, first = train(tmp_path / "b", stream(60), icpc(), workers=workers, callbacks=[StopAt(8)], save_steps=8)
    assert first.batches == uninterrupted.batches[:8]
    _, _, resumed = train(
        tmp_path / "b", stream(60), icpc(), workers=workers, resume=str(tmp_path / "b" / "checkpoint-8")
    )
    assert resumed.batches == uninterrupted.batches[8:]


@pytest.mark.parametrize("workers", [0, 2])
def test_plain_accelerate_loop_from_a_stream(workers):
    icpc = ICPCConfig(levels=[0.5, 1.0], seed=1)
    model = patch_model(tiny_vit(), icpc)
    trained = InputRecorder(model)
    max_steps = 10
    plan = LevelPlan(icpc, num_epochs=max_steps)  # a stream's schedule moves by optimizer steps
    levelled = plan.bind(ICPCDataCollator(None, icpc))
    loader = DataLoader(stream(20), batch_size=4, collate_fn=levelled, num_workers=workers)
    accelerator = Accelerator(cpu=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()
    step, epoch = 0, 0
    while step < max_steps:
        levelled.set_epoch(epoch, first_step=step)
        for batch in loader:
            accelerator.backward(model(**batch).loss)
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if step == max_steps:
                break
        epoch += 1
    assert [side / 32 for side in trained.sides] == planned(plan, 5, 2)
    assert len(set(trained.sides)) == 2


def test_a_stream_refuses_uncompressed_last_epochs_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="uncompressed_last_epochs.*no epochs.*set it to 0"):
        train(tmp_path, stream(16), ICPCConfig(levels=[0.5, 1.0], uncompressed_last_epochs=1), max_steps=4)


def test_a_stream_calibrates_on_a_map_style_eval_set(tmp_path):
    icpc = ICPCConfig(levels=[0.5, 1.0], seed=2)
    model = patch_model(tiny_vit(), icpc)
    evaluation = [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(12)]
    args = quiet_cpu_args(
        str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=6,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=6,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=stream(24),
        eval_dataset=evaluation,
        data_collator=ICPCDataCollator(None, icpc),
        callbacks=[ICPCCallback()],
    )
    trainer.train()
    assert any("icpc/calibrated_accuracy" in h for h in trainer.state.log_history)
