"""ICPC inside a plain Trainer and a plain Accelerate loop."""

import pytest
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from transformers import Trainer, TrainingArguments

from helpers import RecordingCollator, tiny_vit
from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, ICPCSampler, patch_model


def dataset(count=40):
    return [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(count)]


def args(tmp_path, **kwargs):
    values = dict(output_dir=str(tmp_path), per_device_train_batch_size=4, num_train_epochs=3, logging_steps=2,
                  report_to=[], use_cpu=True, save_strategy="no", remove_unused_columns=False, disable_tqdm=True)
    values.update(kwargs)
    return TrainingArguments(**values)


def test_trainer_trains_on_per_batch_levels_logs_savings_and_evaluates_uncompressed(tmp_path):
    icpc = ICPCConfig(levels=[0.5, 0.75, 1.0], uncompressed_last_epochs=1, seed=3)
    model = patch_model(tiny_vit(), icpc)
    collator = RecordingCollator(None, icpc)
    trainer = Trainer(model=model, args=args(tmp_path), train_dataset=dataset(), eval_dataset=dataset(8),
                      data_collator=collator, callbacks=[ICPCCallback()])
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


def test_trainer_batches_follow_the_sampler_plan(tmp_path):
    icpc = ICPCConfig(levels=[0.5, 1.0], seed=5)
    model = patch_model(tiny_vit(), icpc)
    collator = RecordingCollator(None, icpc)
    callback = ICPCCallback()
    trainer = Trainer(model=model, args=args(tmp_path, num_train_epochs=2), train_dataset=dataset(),
                      data_collator=collator, callbacks=[callback])
    trainer.train()
    planned = [lv for epoch in range(2) for lv in callback.sampler.plan(epoch).chunk_levels.tolist()]
    assert [side / 32 for side in collator.sides] == planned


def test_trainer_with_an_unpatched_model_says_how_to_fix_it(tmp_path):
    icpc = ICPCConfig()
    patch_model(tiny_vit(), icpc)
    trainer = Trainer(model=tiny_vit(), args=args(tmp_path), train_dataset=dataset(),
                      data_collator=ICPCDataCollator(None, icpc), callbacks=[ICPCCallback()])
    with pytest.raises(ValueError, match="patch_model"):
        trainer.train()


def test_trainer_refuses_dataloader_workers(tmp_path):
    icpc = ICPCConfig()
    model = patch_model(tiny_vit(), icpc)
    trainer = Trainer(model=model, args=args(tmp_path, dataloader_num_workers=1), train_dataset=dataset(),
                      data_collator=ICPCDataCollator(None, icpc), callbacks=[ICPCCallback()])
    with pytest.raises(ValueError, match="dataloader_num_workers=0"):
        trainer.train()


def test_plain_accelerate_loop_with_sampler_and_collator():
    icpc = ICPCConfig(levels=[0.5, 1.0], seed=1)
    model = patch_model(tiny_vit(), icpc)
    collator = RecordingCollator(None, icpc)
    sampler = ICPCSampler(24, chunk_size=4, icpc=icpc)
    loader = DataLoader(dataset(24), batch_size=4, sampler=sampler, collate_fn=sampler.bind(collator))
    accelerator = Accelerator(cpu=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    for epoch in range(2):
        loader.set_epoch(epoch)
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
    planned = [lv for epoch in range(2) for lv in sampler.plan(epoch).chunk_levels.tolist()]
    assert [side / 32 for side in collator.sides] == planned
    assert len(set(planned)) == 2


def test_trainer_with_a_datasets_image_column_and_with_transform(tmp_path):
    datasets = pytest.importorskip("datasets")
    import numpy as np
    from PIL import Image

    from helpers import tiny_image_processor

    rng = np.random.default_rng(0)
    images = [Image.fromarray((rng.random((40, 40, 3)) * 255).astype("uint8")) for _ in range(16)]
    data = datasets.Dataset.from_dict({"image": images, "label": [i % 3 for i in range(16)]})
    processor = tiny_image_processor()

    def transform(batch):
        return {"pixel_values": processor(images=batch["image"], return_tensors="pt")["pixel_values"],
                "label": batch["label"]}

    icpc = ICPCConfig(levels=[0.5, 1.0], seed=2)
    model = patch_model(tiny_vit(), icpc)
    collator = RecordingCollator(processor, icpc)
    trainer = Trainer(model=model, args=args(tmp_path, num_train_epochs=2), train_dataset=data.with_transform(transform),
                      data_collator=collator, callbacks=[ICPCCallback()])
    trainer.train()
    assert len(collator.batches) == 8 and set(collator.sides) == {16, 32}
