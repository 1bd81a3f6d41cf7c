"""Compression on the model's device (`ICPCDataCollator(resize_on_device=...)`): the same batches as the CPU path,
untouched at full size, counted right, refused where nothing would compress them, and chosen sensibly by default."""

from __future__ import annotations

import copy
import weakref

import pytest
import torch
from helpers import quiet_cpu_args, tiny_vit
from transformers import (
    ASTConfig,
    ASTForAudioClassification,
    Trainer,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
)

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, device, patch_model, run_cascade, unpatch_model
from icpc_hf.modality import GRID_KEY
from icpc_hf.registry import REGISTRY

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_videomae():
    config = VideoMAEConfig(
        num_frames=8,
        tubelet_size=2,
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
    )
    return VideoMAEForVideoClassification(config).eval()


def tiny_ast():
    config = ASTConfig(
        num_mel_bins=16,
        max_length=64,
        patch_size=8,
        frequency_stride=4,
        time_stride=4,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
    )
    return ASTForAudioClassification(config).eval()


def padded_spectrograms(count):
    """Spectrograms whose tails are the extractor's padding value, so `trim_padding` has something to trim."""
    from transformers import ASTFeatureExtractor

    extractor = ASTFeatureExtractor(num_mel_bins=16, max_length=64, sampling_rate=16000)
    clips = [torch.randn(int(16000 * s)).numpy() * 0.1 for s in (0.2, 0.3, 0.5, 0.6)[:count]]
    return extractor, [
        {"input_values": v, "label": i % 3}
        for i, v in enumerate(extractor(clips, sampling_rate=16000, return_tensors="pt")["input_values"])
    ]


CASES = {
    "image": lambda: (
        tiny_vit(),
        {},
        None,
        [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(4)],
    ),
    "video": lambda: (
        tiny_videomae(),
        {},
        None,
        [{"pixel_values": torch.randn(8, 3, 32, 32), "label": i % 3} for i in range(3)],
    ),
    "audio": lambda: (tiny_ast(), {}, None, [{"input_values": torch.randn(64, 16), "label": i % 3} for i in range(3)]),
    "audio-trim": lambda: (tiny_ast(), {"trim_padding": True, "position_strategy": "crop"}, *padded_spectrograms(4)),
}


def setup(case):
    model, settings, processor, features = CASES[case]()
    icpc = ICPCConfig(**settings)
    model = patch_model(model, icpc)
    return model, icpc, processor, features


def compressed(model, batch):
    """What the patched model's hook hands its forward: the device path's batch after resampling."""
    result = device.compress_on_device(model, (), dict(batch))
    return batch if result is None else result[1]


@pytest.mark.parametrize("case", list(CASES))
def test_device_path_gives_the_cpu_paths_batch_tokens_and_outputs_at_every_level(case):
    model, icpc, processor, features = setup(case)
    modality = REGISTRY[icpc.model_type].modality
    on_cpu = ICPCDataCollator(processor, icpc, resize_on_device=False)
    on_device = ICPCDataCollator(processor, icpc, resize_on_device=True)
    key = modality.input_key
    for level in icpc.levels:
        expected, deferred = on_cpu(features, level=level), on_device(features, level=level)
        full = torch.stack([torch.as_tensor(f[key]) for f in features])  # the inputs arrive at full size
        assert deferred[key].shape == full.shape  # leaves the collator at full size
        assert (GRID_KEY in deferred) == (expected[key].shape != full.shape)
        assert torch.equal(modality.batch_tokens(deferred, icpc), modality.tokens(expected, icpc))
        resized = compressed(model, deferred)
        assert GRID_KEY not in resized
        assert resized[key].shape == expected[key].shape
        torch.testing.assert_close(resized[key], expected[key], rtol=1e-5, atol=1e-5)
        with torch.no_grad():
            torch.testing.assert_close(model(**deferred).logits, model(**expected).logits, rtol=1e-4, atol=1e-5)


def test_full_size_is_bit_identical_to_a_plain_forward():
    plain = tiny_vit()
    model = patch_model(copy.deepcopy(plain), ICPCConfig())
    features = [{"pixel_values": torch.randn(3, 32, 32)} for _ in range(3)]
    batch = ICPCDataCollator(None, model.config.icpc, resize_on_device=True)(features, level=1.0)
    assert GRID_KEY not in batch
    with torch.no_grad():
        assert torch.equal(
            model(**batch).logits, plain(pixel_values=torch.stack([f["pixel_values"] for f in features])).logits
        )


def test_a_model_that_cannot_compress_the_batch_refuses_it(monkeypatch):
    model, icpc, _, features = setup("image")
    batch = ICPCDataCollator(None, icpc, resize_on_device=True)(features, level=0.5)
    unpatch_model(model)
    with pytest.raises(ValueError, match="not patched for ICPC"):
        model(**batch)
    monkeypatch.setattr(device, "RECEIVERS", weakref.WeakSet())  # no patched model left in this process
    with pytest.raises(ValueError, match="patch_model"):
        ICPCDataCollator(None, icpc, resize_on_device=True)(features, level=0.5)
    with pytest.raises(ValueError, match="resize_on_device"):
        ICPCDataCollator(None, icpc, resize_on_device="yes")


def test_text_is_pruned_in_the_collator_only():
    collator = ICPCDataCollator(None, ICPCConfig(), resize_on_device=True)
    with pytest.raises(ValueError, match="collator"):
        collator.on_device(REGISTRY["bert"].modality, [{"text": "a"}])
    assert not ICPCDataCollator(None, ICPCConfig()).on_device(REGISTRY["bert"].modality, [{"text": "a"}])


def test_the_default_resamples_on_an_accelerator_and_for_inputs_at_the_models_size_only():
    _, icpc, _, features = setup("image")
    collator = ICPCDataCollator(None, icpc)
    assert GRID_KEY not in collator(features, level=0.5)  # not told where the model is: the CPU path
    collator.model_device = "cpu"
    assert GRID_KEY not in collator(features, level=0.5)
    collator.model_device = "cuda"
    assert GRID_KEY in collator(features, level=0.5)
    larger = [{"pixel_values": torch.randn(3, 40, 40)} for _ in range(2)]
    assert collator(larger, level=0.5)["pixel_values"].shape[-1] == 16  # resampled once, here


def train(tmp_path, resize_on_device, workers=0, accelerators=None, monkeypatch=None, peft=False):
    if accelerators is not None:  # the CPU standing in for an accelerator
        monkeypatch.setattr("icpc_hf.training.collator.ACCELERATORS", accelerators)
    torch.manual_seed(0)
    model = patch_model(tiny_vit(), ICPCConfig(levels=[0.5, 0.75, 1.0]))
    if peft:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"])
        )
    seen = []
    base = model.get_base_model() if peft else model
    base.vit.embeddings.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[-2:])))
    collator = ICPCDataCollator(None, base.config.icpc, resize_on_device=resize_on_device)
    generator = torch.Generator().manual_seed(1)
    data = [{"pixel_values": torch.randn(3, 32, 32, generator=generator), "label": i % 3} for i in range(16)]
    args = quiet_cpu_args(
        str(tmp_path / str(resize_on_device)),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        dataloader_num_workers=workers,
        logging_steps=2,
        seed=0,
    )
    callback = ICPCCallback(calibrate=False, publish=False)
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=[callback])
    trainer.train()
    logs = [
        {k: v for k, v in log.items() if k == "loss" or k.startswith("icpc/")}
        for log in trainer.state.log_history
        if "loss" in log
    ]
    return collator, seen, logs


def test_training_on_the_device_path_matches_the_cpu_path(tmp_path, monkeypatch):
    collator, seen_cpu, logs_cpu = train(tmp_path, None)
    assert collator.model_device == "cpu"  # the callback said where the model is: the CPU path
    _, seen_device, logs_device = train(tmp_path, None, workers=1, accelerators=("cpu",), monkeypatch=monkeypatch)
    assert len(set(seen_cpu)) > 1 and seen_device == seen_cpu  # the embeddings saw the same levels
    assert [log.keys() for log in logs_device] == [log.keys() for log in logs_cpu]
    for device_log, cpu_log in zip(logs_device, logs_cpu):  # icpc/ figures count the compressed tokens
        assert device_log == pytest.approx(cpu_log, rel=1e-4)


def test_peft_and_the_cascade_on_the_device_path(tmp_path, monkeypatch):
    _, seen_cpu, logs_cpu = train(tmp_path, False, peft=True)
    _, seen_device, logs_device = train(tmp_path, True, peft=True)
    assert seen_device == seen_cpu and logs_device == pytest.approx(logs_cpu, rel=1e-4)
    model, icpc, _, features = setup("image")
    cpu = run_cascade(model, features, None, levels=[0.5, 1.0], thresholds=0.99)
    monkeypatch.setattr("icpc_hf.cascade.ACCELERATORS", ("cpu",))
    on_device = run_cascade(model, features, None, levels=[0.5, 1.0], thresholds=0.99)
    torch.testing.assert_close(on_device.probabilities, cpu.probabilities, rtol=1e-4, atol=1e-6)
    assert torch.equal(on_device.spent_tokens, cpu.spent_tokens)
