"""Audio: spectrogram size modulation for the Audio Spectrogram Transformer."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import quiet_cpu_args
from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification, Trainer, pipeline
from transformers.models.audio_spectrogram_transformer.modeling_audio_spectrogram_transformer import ASTEmbeddings

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model, run_cascade
from icpc_hf.audio import AudioModality, content_frames, padding_value
from icpc_hf.grid import conv_input_size, conv_output_size
from icpc_hf.wav import mono_waveform, read_wav

BINS, LENGTH, RATE = 16, 64, 16000


def tiny_config(**kwargs):
    values = dict(
        num_mel_bins=BINS,
        max_length=LENGTH,
        patch_size=8,
        frequency_stride=4,
        time_stride=4,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
    )
    values.update(kwargs)
    return ASTConfig(**values)


def tiny_ast(**kwargs):
    return ASTForAudioClassification(tiny_config(**kwargs)).eval()


def extractor():
    return ASTFeatureExtractor(num_mel_bins=BINS, max_length=LENGTH, sampling_rate=RATE)


def tone(seconds, frequency=440.0, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    noise = 0.05 * np.random.default_rng(0).standard_normal(t.size)
    return (0.5 * np.sin(2 * np.pi * frequency * t) + noise).astype(np.float32)


def features(count=4, seconds=(0.2, 0.3, 0.5, 0.6)):
    fe = extractor()
    clips = [tone(seconds[i % len(seconds)], 200.0 * (i + 1)) for i in range(count)]
    values = fe(clips, sampling_rate=RATE, return_tensors="pt")["input_values"]
    return [{"input_values": v, "label": i % 3} for i, v in enumerate(values)]


# ---------------------------------------------------------------- grid arithmetic
@pytest.mark.parametrize("kernel,stride", [(16, 10), (8, 4), (8, 8), (7, 3), (4, 6), (1, 1)])
def test_conv_output_size_matches_a_real_conv_and_conv_input_size_is_the_smallest_length(kernel, stride):
    conv = torch.nn.Conv2d(1, 1, kernel_size=(kernel, kernel), stride=(stride, stride))
    for length in range(kernel, kernel + 5 * stride + 3):
        patches = conv_output_size(length, kernel, stride)
        assert conv(torch.zeros(1, 1, length, kernel)).shape[-2] == patches
        smallest = conv_input_size(patches, kernel, stride)
        assert smallest <= length
        assert conv_output_size(smallest, kernel, stride) == patches
        assert conv_output_size(smallest - 1, kernel, stride) == patches - 1
    assert conv_output_size(kernel - 1, kernel, stride) == 0


@pytest.mark.parametrize(
    "bins,length,patch,fstride,tstride",
    [(128, 1024, 16, 10, 10), (16, 64, 8, 4, 4), (20, 50, 6, 5, 3), (16, 40, 8, 8, 8), (12, 33, 4, 2, 7)],
)
def test_geometry_and_level_sizes_are_exact_for_overlapping_patches(bins, length, patch, fstride, tstride):
    config = ASTConfig(
        num_mel_bins=bins,
        max_length=length,
        patch_size=patch,
        frequency_stride=fstride,
        time_stride=tstride,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
    )
    modality = AudioModality()
    geometry = modality.geometry(config)
    embeddings = ASTEmbeddings(config)
    assert geometry.full_grid == embeddings.get_shape(config)
    if (bins, length) == (128, 1024):
        assert geometry.full_grid == (12, 101)
    icpc = ICPCConfig(axes=["frequency", "time"], min_level=0.1)
    modality.resolve(icpc, config)
    for level in icpc.levels[::3] + [icpc.levels[-2]]:
        grid = modality.grid(level, icpc)
        frames, mel = modality.input_size(grid, icpc)
        with torch.no_grad():
            out = embeddings.patch_embeddings(torch.zeros(1, frames, mel))
        assert out.shape[1] == grid[0] * grid[1]
        assert modality.grid_of(torch.zeros(1, frames, mel), icpc) == grid


# ---------------------------------------------------------------- the patch
def test_unpatched_ast_rejects_short_spectrograms_and_the_patched_one_accepts_them():
    model = tiny_ast()
    with pytest.raises(RuntimeError):
        model(input_values=torch.randn(2, 32, BINS))
    patch_model(model, ICPCConfig())
    logits = model(input_values=torch.randn(2, 32, BINS)).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def _manual_embeddings(model, values, strategy):
    """The compressed embeddings rebuilt by hand from the patch projection and an explicit position choice."""
    embeddings = model.audio_spectrogram_transformer.embeddings
    full_f, full_t = embeddings.get_shape(model.config)
    patches = embeddings.patch_embeddings(values)
    grid_f = conv_output_size(values.shape[2], 8, 4)
    grid_t = conv_output_size(values.shape[1], 8, 4)
    table = embeddings.position_embeddings[0, 2:].reshape(full_f, full_t, -1)
    if strategy == "crop":
        chosen = table[:grid_f, :grid_t]
    elif strategy == "stride":
        rows = [math.floor((i + 0.5) * full_f / grid_f) for i in range(grid_f)]
        cols = [math.floor((j + 0.5) * full_t / grid_t) for j in range(grid_t)]
        chosen = table[rows][:, cols]
    else:
        chosen = F.interpolate(
            table.permute(2, 0, 1)[None], size=(grid_f, grid_t), mode="bicubic", align_corners=False
        )[0].permute(1, 2, 0)
    special = torch.cat([embeddings.cls_token[0], embeddings.distillation_token[0]])
    head = embeddings.position_embeddings[0, :2] + special
    return torch.cat([head.expand(values.shape[0], -1, -1), patches + chosen.reshape(-1, chosen.shape[-1])], dim=1)


@pytest.mark.parametrize("strategy", ["crop", "stride", "interpolate"])
@pytest.mark.parametrize("shape", [(28, BINS), (40, 12)])
def test_compressed_spectrograms_take_their_positions_by_strategy(strategy, shape):
    model = patch_model(tiny_ast(), ICPCConfig(position_strategy=strategy, axes=["frequency", "time"]))
    with torch.no_grad():
        model.audio_spectrogram_transformer.embeddings.position_embeddings.normal_()
        model.audio_spectrogram_transformer.embeddings.cls_token.normal_()
        model.audio_spectrogram_transformer.embeddings.distillation_token.normal_()
    values = torch.randn(2, *shape)
    with torch.no_grad():
        got = model.audio_spectrogram_transformer.embeddings(values)
        expected = _manual_embeddings(model, values, strategy)
    torch.testing.assert_close(got, expected)


def test_the_patch_refuses_spectrograms_it_cannot_take():
    embeddings = patch_model(tiny_ast(), ICPCConfig()).audio_spectrogram_transformer.embeddings
    with pytest.raises(ValueError, match="smaller than one patch"):
        embeddings(torch.randn(1, 6, BINS))
    with pytest.raises(ValueError, match="larger than the"):
        embeddings(torch.randn(1, LENGTH + 8, BINS))
    with pytest.raises(ValueError, match="batch, frames, mel bins"):
        embeddings(torch.randn(LENGTH, BINS))


# ---------------------------------------------------------------- collator and features
def test_collator_shrinks_time_to_the_level_and_keeps_labels():
    icpc = ICPCConfig(levels=[0.2, 0.6, 1.0])
    model = patch_model(tiny_ast(), icpc)
    collator = ICPCDataCollator(extractor(), icpc)
    feats = features()
    full = collator(feats)
    assert full["input_values"].shape == (4, LENGTH, BINS) and full["labels"].tolist() == [0, 1, 2, 0]
    assert torch.equal(full["input_values"], torch.stack([f["input_values"] for f in feats]))
    for level in icpc.levels:
        batch = collator(feats, level=level)
        grid = AudioModality().grid(level, icpc)
        assert batch["input_values"].shape == (4, conv_input_size(grid[1], 8, 4) if level < 1 else LENGTH, BINS)
        assert AudioModality().tokens(batch, icpc).tolist() == [grid[0] * grid[1] + 2] * 4
        assert model(**batch).logits.shape == (4, 3)
    assert AudioModality().full_tokens(full, icpc).tolist() == [3 * 15 + 2] * 4


def test_frequency_axis_compresses_only_when_asked():
    icpc = ICPCConfig(levels=[0.5, 1.0], axes=["time", "frequency"])
    patch_model(tiny_ast(), icpc)
    batch = ICPCDataCollator(extractor(), icpc)(features(), level=0.5)
    # full grid 3 x 15; a level of 8/15 keeps round(0.533 * 3) = 2 frequency and 8 time patches
    assert batch["input_values"].shape[1:] == (conv_input_size(8, 8, 4), conv_input_size(2, 8, 4))


def test_raw_audio_gives_the_same_batch_as_extracted_features():
    icpc = ICPCConfig()
    patch_model(tiny_ast(), icpc)
    collator = ICPCDataCollator(extractor(), icpc)
    clips = [tone(0.3), tone(0.5, 880.0)]
    raw = [{"audio": {"array": clip, "sampling_rate": RATE}, "label": 1} for clip in clips]
    extracted = extractor()(clips, sampling_rate=RATE, return_tensors="pt")["input_values"]
    assert torch.equal(collator(raw)["input_values"], extracted)


def test_waveform_checks_stereo_resampling_silence_and_length():
    clip = tone(0.5)
    stereo = np.stack([clip, clip * 0.5])
    np.testing.assert_allclose(mono_waveform(stereo, RATE), clip * 0.75, rtol=1e-6)
    np.testing.assert_allclose(mono_waveform(stereo.T, RATE), clip * 0.75, rtol=1e-6)
    resampled = mono_waveform({"array": tone(0.5, rate=8000), "sampling_rate": 8000}, RATE)
    assert resampled.size == clip.size
    # band-limited upsampling keeps the original samples (away from the filter's edge effects)
    np.testing.assert_allclose(resampled[::2][50:-50], tone(0.5, rate=8000)[50:-50], atol=1e-2)
    with pytest.raises(ValueError, match="shorter than one 400-sample"):
        mono_waveform(np.zeros(0), RATE)
    with pytest.raises(ValueError, match="shorter than one"):
        mono_waveform(np.zeros(120), RATE)
    with pytest.raises(ValueError, match="NaN"):
        mono_waveform(np.full(1000, np.nan), RATE)
    with pytest.raises(ValueError, match="mono"):
        mono_waveform(np.zeros((2, 2, 500)), RATE)
    with pytest.raises(ValueError, match="under `array`"):
        mono_waveform({"samples": clip}, RATE)

    icpc = ICPCConfig()
    model = patch_model(tiny_ast(), icpc)
    collator = ICPCDataCollator(extractor(), icpc)
    silent = collator([{"audio": np.zeros(RATE, dtype=np.float32)}], level=0.5)
    assert torch.isfinite(model(**silent).logits).all()
    long_clip = tone(2.0)  # 198 frames, truncated to 64 as the extractor does
    batch = collator([{"audio": {"array": long_clip, "sampling_rate": RATE}}])
    expected = extractor()(long_clip, sampling_rate=RATE, return_tensors="pt")["input_values"]
    assert batch["input_values"].shape == (1, LENGTH, BINS) and torch.equal(batch["input_values"], expected)


def test_wav_files_are_read_averaged_and_resampled(tmp_path):
    import wave

    left = tone(0.5, rate=8000)
    pcm = (np.stack([left, -left], axis=1) * 32767).astype(np.int16)
    path = str(tmp_path / "stereo.wav")
    with wave.open(path, "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(pcm.tobytes())
    read = read_wav(path)
    assert read["sampling_rate"] == 8000 and read["array"].shape == (2, left.size)
    np.testing.assert_allclose(read["array"][0], left, atol=1e-4)
    mono = mono_waveform(path, RATE)
    assert mono.size == 2 * left.size and np.abs(mono).max() < 1e-4  # the channels cancel out


def test_bad_spectrogram_features_get_clear_errors():
    icpc = ICPCConfig()
    patch_model(tiny_ast(), icpc)
    collator = ICPCDataCollator(extractor(), icpc)
    with pytest.raises(ValueError, match="mel bins=16"):
        collator([{"input_values": torch.randn(LENGTH, 20)}])
    with pytest.raises(ValueError, match="`input_values`.*or raw `audio`"):
        collator([{"waveform": np.zeros(100)}])
    with pytest.raises(ValueError, match="no feature extractor"):
        ICPCDataCollator(None, icpc)([{"audio": tone(0.3)}])
    with pytest.raises(ValueError, match="shorter than the model's max_length"):
        ICPCDataCollator(None, icpc)([{"input_values": torch.randn(30, BINS)}])
    with pytest.raises(ValueError, match="makes 32 mel bins"):
        ICPCDataCollator(ASTFeatureExtractor(num_mel_bins=32, max_length=LENGTH), icpc)([{"audio": tone(0.3)}])
    longer = collator([{"input_values": torch.randn(LENGTH + 10, BINS)}])
    assert longer["input_values"].shape == (1, LENGTH, BINS)
    shorter = collator([{"input_values": torch.randn(30, BINS)}])
    assert shorter["input_values"].shape == (1, LENGTH, BINS)
    assert content_frames(shorter["input_values"], padding_value(extractor())).item() == 30


# ---------------------------------------------------------------- trim_padding
def test_trim_padding_drops_the_padding_patches_a_batch_does_not_need():
    feats = features(seconds=(0.2, 0.3))  # 0.3 s = 28 frames of 64
    settings = ICPCConfig(levels=[0.4, 1.0], trim_padding=True)
    model = patch_model(tiny_ast(), settings)
    pad = padding_value(extractor())
    longest = int(content_frames(torch.stack([f["input_values"] for f in feats]), pad).max())
    assert longest == 28
    batch = ICPCDataCollator(extractor(), settings)(feats)
    frames = batch["input_values"].shape[1]
    kept = conv_output_size(frames, 8, 4)
    assert frames == conv_input_size(kept, 8, 4) and frames >= longest > conv_input_size(kept - 1, 8, 4)
    full = torch.stack([f["input_values"] for f in feats])
    assert torch.equal(batch["input_values"], full[:, :frames])
    assert AudioModality().tokens(batch, settings)[0] == 3 * kept + 2 < 3 * 15 + 2
    # A trimmed clip is a crop of the padded one: its patch embeddings are the first columns of the full ones.
    embeddings = model.audio_spectrogram_transformer.embeddings
    with torch.no_grad():
        trimmed_tokens = embeddings(batch["input_values"])
        full_tokens = embeddings(full)
    full_grid = full_tokens[:, 2:].reshape(4, 3, 15, -1)
    torch.testing.assert_close(trimmed_tokens[:, 2:], full_grid[:, :, :kept].reshape(4, 3 * kept, -1))
    # Each clip's own padding patches are masked, so its answer does not depend on the clips batched with it.
    mask = batch["attention_mask"]
    assert mask.shape == (4, 2 + 3 * kept) and mask[:, :2].all()
    assert mask.sum(1).tolist() == [2 + 3 * 4, 2 + 3 * kept] * 2  # 0.2 s = 18 frames: 4 patches of 8, stride 4
    collator = ICPCDataCollator(extractor(), settings)
    with torch.no_grad():
        together = model(**collator(feats)).logits
        alone = torch.cat([model(**collator([f])).logits for f in feats])
    torch.testing.assert_close(together, alone)
    compressed = collator(feats, level=0.4)
    assert compressed["input_values"].shape[1] < conv_input_size(6, 8, 4)  # fewer than the level's 6 patches
    assert model(**compressed).logits.shape == (4, 3)
    with pytest.raises(ValueError, match="position_strategy='crop'"):
        patch_model(tiny_ast(), ICPCConfig(trim_padding=True, position_strategy="stride"))
    with pytest.raises(TypeError, match="trim_padding"):
        ICPCConfig(trim_padding="yes")
    with pytest.raises(ValueError, match="pass the ASTFeatureExtractor"):
        ICPCDataCollator(None, settings)(feats)


# ---------------------------------------------------------------- save/load, Trainer, pipeline, Hub
def test_trainer_with_callback_trains_on_several_spectrogram_lengths(tmp_path):
    icpc = ICPCConfig(levels=[0.4, 0.7, 1.0], seed=1)
    model = patch_model(tiny_ast(), icpc)
    collator = ICPCDataCollator(extractor(), icpc)
    lengths = []
    original = collator.modality.collate

    def recording(processor, feats, level, settings):
        batch = original(processor, feats, level, settings)
        lengths.append(batch["input_values"].shape[1])
        return batch

    collator.modality.collate = recording
    try:
        args = quiet_cpu_args(tmp_path, per_device_train_batch_size=4, num_train_epochs=2, logging_steps=2)
        trainer = Trainer(
            model=model, args=args, train_dataset=features(24), data_collator=collator, callbacks=[ICPCCallback()]
        )
        trainer.train()
    finally:
        del collator.modality.collate
    assert len(set(lengths)) >= 2 and max(lengths) <= LENGTH
    logged = [h["icpc/token_ratio"] for h in trainer.state.log_history if "icpc/token_ratio" in h]
    assert logged and all(0 < r <= 1 for r in logged) and min(logged) < 1


def test_pipeline_reports_level_and_tokens_and_runs_the_cascade():
    icpc = ICPCConfig(levels=[0.4, 0.7, 1.0], cascade_levels=[0.4, 1.0])
    model = patch_model(tiny_ast(), icpc)
    classifier = pipeline("icpc-audio-classification", model=model, feature_extractor=extractor())
    answers = classifier([tone(0.3), {"array": tone(0.4, rate=8000), "sampling_rate": 8000}], top_k=2, thresholds=0.0)
    assert len(answers) == 2 and all(len(a) == 2 for a in answers)
    cheapest_tokens = 3 * AudioModality().grid(0.4, icpc)[1] + 2
    for answer in answers:
        assert {"label", "score", "level", "tokens"} <= set(answer[0])
        assert answer[0]["level"] == pytest.approx(0.4) and answer[0]["tokens"] == cheapest_tokens
    full = classifier(tone(0.3), thresholds=1.0)
    assert full[0]["level"] == 1.0 and full[0]["tokens"] == 3 * 15 + 2
    result = run_cascade(model, features(), extractor(), thresholds=1.0)
    assert result.spent_tokens.tolist() == [cheapest_tokens + 47] * 4
