"""Data parallelism, resuming, and PEFT adapters with ICPC."""

import json

import pytest
import torch
from helpers import InputRecorder, StopAt, quiet_cpu_args, run_two_processes, tiny_vit
from transformers import Trainer

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model


@pytest.mark.parametrize(
    "num_samples,workers,data",
    [(32, 0, "map"), (30, 0, "map"), (32, 2, "map"), (32, 0, "stream"), (32, 2, "stream"), (32, 0, "device")],
)
def test_two_processes_share_levels_per_step_and_cover_the_data(tmp_path, num_samples, workers, data):
    port = 29500 + num_samples + 7 * workers + 50 * (data == "stream") + 80 * (data == "device")
    run_two_processes("ddp_worker.py", port, tmp_path, num_samples, workers, data)
    records = [
        json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2) if (tmp_path / f"rank{r}.json").exists()
    ]
    assert len(records) == 2, "only one process ran"
    assert {r["world_size"] for r in records} == {2} and {r["rank"] for r in records} == {0, 1}
    rank0, rank1 = records
    assert rank0["plans"] == rank1["plans"]  # the same per-epoch draw on every rank
    assert rank0["trained"] == rank1["trained"]  # both ranks run one level at each step
    assert rank0["trained"] == [round(lv * 32) for plan in rank0["plans"] for lv in plan]
    if workers or data == "stream":  # collated in workers, or dispatched from one rank: checked above
        return
    assert len(rank0["batches"]) == len(rank1["batches"])
    if data == "device":  # the collator leaves every batch at full size; each rank's model resamples it
        assert {batch["size"] for r in records for batch in r["batches"]} == {32}
    steps = rank0["steps_per_epoch"]
    for epoch in range(2):
        seen = [i for r in records for batch in r["batches"][epoch * steps : (epoch + 1) * steps] for i in batch["idx"]]
        assert set(seen) == set(range(num_samples))  # every sample is seen in every epoch
        if num_samples % 8 == 0:
            assert len(seen) == num_samples  # and exactly once when the world size divides the data


def test_fsdp2_fully_shard_on_cpu_computes_what_the_unsharded_patched_model_computes(tmp_path):
    pytest.importorskip("torch.distributed.fsdp").fully_shard  # noqa: B018  (FSDP2, torch >= 2.6)
    run_two_processes("fsdp_worker.py", 29650, tmp_path)
    records = [json.loads((tmp_path / f"fsdp{r}.json").read_text()) for r in range(2)]
    for record in records:  # at a compressed level and at full size, each rank's own batch
        assert record["losses"] == pytest.approx(record["reference"], abs=1e-5)
    assert records[0]["losses"] != records[1]["losses"]
    assert records[0]["grad_norm"] == pytest.approx(records[1]["grad_norm"])  # gradients reduced across ranks


def run(tmp_path, icpc, callbacks=(), resume=None, save_steps=None, workers=0, data=None, max_steps=-1):
    torch.manual_seed(0)
    if data is None:
        data = [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(24)]
    model = patch_model(tiny_vit(), icpc)
    trained = InputRecorder(model)
    args = quiet_cpu_args(
        str(tmp_path),
        per_device_train_batch_size=4,
        num_train_epochs=2,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        logging_steps=1000,
        dataloader_num_workers=workers,
        max_steps=max_steps,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=ICPCDataCollator(None, icpc),
        callbacks=[ICPCCallback(), *callbacks],
    )
    trainer.train(resume_from_checkpoint=resume)
    return trained.batches


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_continues_the_same_schedule(tmp_path, workers):
    icpc = lambda: ICPCConfig(levels=[0.5, 0.75, 1.0], seed=11)  # noqa: E731
    uninterrupted = run(tmp_path / "a", icpc(), workers=workers)
    assert len(uninterrupted) == 12 and len(set(side for side, _ in uninterrupted)) > 1
    first_part = run(tmp_path / "b", icpc(), callbacks=[StopAt(8)], save_steps=8, workers=workers)
    assert first_part == uninterrupted[:8]
    resumed = run(tmp_path / "b", icpc(), resume=str(tmp_path / "b" / "checkpoint-8"), workers=workers)
    assert resumed == uninterrupted[8:]


def test_resume_with_changed_levels_raises(tmp_path):
    run(tmp_path, ICPCConfig(levels=[0.5, 1.0]), callbacks=[StopAt(4)], save_steps=4)
    with pytest.raises(ValueError, match="differ from the checkpoint's \\(levels\\)"):
        run(tmp_path, ICPCConfig(levels=[0.75, 1.0]), resume=str(tmp_path / "checkpoint-4"))


def test_lora_adapter_saves_with_icpc_settings_and_loads_back_patched(tmp_path):
    peft = pytest.importorskip("peft")
    from icpc_hf import build_pipeline, icpc_settings, is_patched, load_adapter, save_adapter

    torch.manual_seed(0)
    base = tiny_vit()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    patch_model(lora, ICPCConfig(levels=[0.5, 1.0], position_strategy="stride", cascade_levels=[0.5, 1.0]))
    pixels = torch.randn(2, 3, 16, 16)
    expected = lora(pixel_values=pixels).logits
    save_adapter(lora, tmp_path)
    assert (tmp_path / "icpc_config.json").exists() and (tmp_path / "adapter_config.json").exists()

    fresh = tiny_vit()
    fresh.load_state_dict(base_state)
    loaded = load_adapter(fresh, str(tmp_path))
    assert is_patched(loaded) and icpc_settings(loaded).position_strategy == "stride"
    assert torch.allclose(loaded(pixel_values=pixels).logits, expected, atol=1e-6)
    import numpy as np
    from helpers import tiny_image_processor
    from PIL import Image

    classifier = build_pipeline(loaded, tiny_image_processor())
    answer = classifier(Image.fromarray((np.random.rand(32, 32, 3) * 255).astype("uint8")), top_k=1)
    assert answer[0]["level"] in (0.5, 1.0)


def test_adapter_without_icpc_settings_says_how_to_load_it(tmp_path):
    peft = pytest.importorskip("peft")
    from icpc_hf import load_adapter

    lora = peft.get_peft_model(tiny_vit(), peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="icpc=ICPCConfig"):
        load_adapter(tiny_vit(), str(tmp_path))
