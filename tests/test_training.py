"""ICPC inside a plain Trainer and a plain Accelerate loop."""

import pytest
import torch
from accelerate import Accelerator
from helpers import InputRecorder, RecordingCollator, quiet_cpu_args, tiny_vit
from torch.utils.data import DataLoader
from transformers import Trainer

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, LevelPlan, patch_model


def dataset(count=40):
    return [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(count)]


def args(tmp_path, **kwargs):
    return quiet_cpu_args(
        tmp_path, **{"per_device_train_batch_size": 4, "num_train_epochs": 3, "logging_steps": 2, **kwargs}
    )


def test_trainer_trains_on_per_batch_levels_logs_savings_and_evaluates_uncompressed(tmp_path):
    icpc = ICPCConfig(levels=[0.5, 0.75, 1.0], uncompressed_last_epochs=1, seed=3)
    model = patch_model(tiny_vit(), icpc)
    collator = RecordingCollator(None, icpc)
    trainer = Trainer(
        model=model,
        args=args(tmp_path),
        train_dataset=dataset(),
        eval_dataset=dataset(8),
        data_collator=collator,
        callbacks=[ICPCCallback()],
    )
    trainer.train()
    train_sides = collator.sides[:30]
    assert len(collator.batches) == 30
    assert {16, 24} <= set(train_sides[:20])  # compressed in the first two epochs
    assert set(train_sides[20:]) == {32}  # the last epoch is uncompressed
    logged = [h for h in trainer.state.log_history if "icpc/token_ratio" in h]
    assert logged and all(0 < h["icpc/token_ratio"] <= 1 for h in logged)
    assert any(h["icpc/flops_saved"] > 0 for h in logged)
    collator.batches.clear()
    trainer.evaluate()
    assert collator.batches and set(collator.sides) == {32}


def train_two_epochs(tmp_path, workers, wrap=lambda collator: collator, **trainer_args):
    """Two epochs of 10 batches with ICPCCallback and the collator (as `wrap` returns it); returns the trainer, the
    callback, what the model trained on and the plan's level of each of those batches."""
    icpc = ICPCConfig(levels=[0.5, 1.0], seed=5)
    model = patch_model(tiny_vit(), icpc)
    trained = InputRecorder(model)
    callback = ICPCCallback()
    trainer = Trainer(
        model=model,
        args=args(tmp_path, num_train_epochs=2, dataloader_num_workers=workers),
        train_dataset=dataset(),
        data_collator=wrap(ICPCDataCollator(None, icpc)),
        callbacks=[callback],
        **trainer_args,
    )
    trainer.train()
    planned = [lv for epoch in range(2) for lv in callback.levelled_collate.plan.epoch_levels(epoch, 10)]
    return trainer, callback, trained, planned


@pytest.mark.parametrize("workers", [0, 2])
def test_trainer_batches_follow_the_level_plan_with_and_without_workers(tmp_path, workers):
    trainer, callback, trained, planned = train_two_epochs(tmp_path, workers, eval_dataset=dataset(8))
    assert [side / 32 for side in trained.sides] == planned and len(set(planned)) == 2
    logged = [h for h in trainer.state.log_history if "icpc/token_ratio" in h]  # counted where the model trains
    assert logged and min(h["icpc/token_ratio"] for h in logged) < 1
    assert callback.train_totals["samples"] == 80


class WrappingCollate:
    """A user's collate function around ICPCDataCollator, computing a field of the batch itself."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features):
        batch = self.collator(features)
        batch["labels"] = batch["labels"] * 1  # a field the user computes
        return batch


@pytest.mark.parametrize("workers", [0, 2])
def test_a_users_collate_around_the_collator_gets_the_levels(tmp_path, workers):
    _, _, trained, planned = train_two_epochs(tmp_path, workers, WrappingCollate)
    assert [side / 32 for side in trained.sides] == planned


def test_trainer_with_an_unpatched_model_says_how_to_fix_it(tmp_path):
    icpc = ICPCConfig()
    patch_model(tiny_vit(), icpc)
    trainer = Trainer(
        model=tiny_vit(),
        args=args(tmp_path),
        train_dataset=dataset(),
        data_collator=ICPCDataCollator(None, icpc),
        callbacks=[ICPCCallback()],
    )
    with pytest.raises(ValueError, match="patch_model"):
        trainer.train()


def test_trainer_refuses_persistent_workers_with_the_fix(tmp_path):
    icpc = ICPCConfig()
    model = patch_model(tiny_vit(), icpc)
    trainer = Trainer(
        model=model,
        args=args(tmp_path, dataloader_num_workers=1, dataloader_persistent_workers=True),
        train_dataset=dataset(),
        data_collator=ICPCDataCollator(None, icpc),
        callbacks=[ICPCCallback()],
    )
    with pytest.raises(ValueError, match="dataloader_persistent_workers=False"):
        trainer.train()


@pytest.mark.parametrize("workers", [0, 2])
def test_plain_accelerate_loop_with_level_plan_and_collator(workers):
    icpc = ICPCConfig(levels=[0.5, 1.0], seed=1, schedule="constant")
    model = patch_model(tiny_vit(), icpc)
    trained = InputRecorder(model)
    plan = LevelPlan(icpc)
    levelled = plan.bind(ICPCDataCollator(None, icpc))
    loader = DataLoader(dataset(24), batch_size=4, shuffle=True, collate_fn=levelled, num_workers=workers)
    accelerator = Accelerator(cpu=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()
    for epoch in range(2):
        loader.set_epoch(epoch)
        levelled.set_epoch(epoch)
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
    planned = [lv for epoch in range(2) for lv in plan.epoch_levels(epoch, 6)]
    assert [side / 32 for side in trained.sides] == planned
    assert len(set(planned)) == 2


def test_trainer_with_a_datasets_image_column_and_with_transform(tmp_path):
    datasets = pytest.importorskip("datasets")
    import numpy as np
    from helpers import tiny_image_processor
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray((rng.random((40, 40, 3)) * 255).astype("uint8")) for _ in range(16)]
    data = datasets.Dataset.from_dict({"image": images, "label": [i % 3 for i in range(16)]})
    processor = tiny_image_processor()

    def transform(batch):
        return {
            "pixel_values": processor(images=batch["image"], return_tensors="pt")["pixel_values"],
            "label": batch["label"],
        }

    icpc = ICPCConfig(levels=[0.5, 1.0], seed=2)
    model = patch_model(tiny_vit(), icpc)
    collator = RecordingCollator(processor, icpc)
    trainer = Trainer(
        model=model,
        args=args(tmp_path, num_train_epochs=2),
        train_dataset=data.with_transform(transform),
        data_collator=collator,
        callbacks=[ICPCCallback()],
    )
    trainer.train()
    assert len(collator.batches) == 8 and set(collator.sides) == {16, 32}
