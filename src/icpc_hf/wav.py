"""Audio in: WAV files and waveforms turned into the mono float signal at the feature extractor's rate."""

from __future__ import annotations

import math
import wave
from typing import Any

import numpy as np
import torch

from .serving_inputs import MAX_SECONDS, SAMPLING_RATES

WINDOW_SECONDS = 0.025
"""The extractor's analysis window (400 samples at 16 kHz): shorter audio gives no spectrogram frame at all."""
PCM_TYPES = (np.uint8, np.int8, np.int16, np.int32)
"""Integer samples read as PCM, scaled to [-1, 1] by their full scale as WAV files are (8-bit unsigned: around 128)."""
MAX_CHANNELS = 8
"""The channel axis of a 2-D waveform is its one axis of at most this many entries (a clip has 400 samples or more)."""


def check_clip(rate: int, samples: int, max_seconds: float) -> None:
    """Refuse a sampling rate out of `SAMPLING_RATES` or a clip longer than `max_seconds`, before resampling."""
    low, high = SAMPLING_RATES
    if not low <= rate <= high:
        raise ValueError(
            f"A sampling rate of {rate} Hz is outside {low}-{high} Hz: give the rate the clip was recorded at as its "
            "`sampling_rate`."
        )
    if samples > max_seconds * rate:
        raise ValueError(
            f"A clip of {samples / rate:.4g} s is longer than `max_seconds={max_seconds:g}`: cut it first, or pass a "
            "larger `max_seconds` to the pipeline."
        )


def pcm_to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM samples as float32 in [-1, 1] (float samples unchanged)."""
    if samples.dtype.kind not in "iu":
        return samples
    if samples.dtype not in PCM_TYPES:
        raise ValueError(
            f"Integer samples of type {samples.dtype} have no PCM scale: give int16 or int32 PCM (e.g. "
            "`samples.astype(np.int16)`), or floats in [-1, 1]."
        )
    floats = samples.astype(np.float32)
    if samples.dtype == np.uint8:
        floats -= 128.0
    floats /= float(2 ** (8 * samples.itemsize - 1))
    return floats


def read_wav(path: str, max_seconds: float = MAX_SECONDS) -> dict[str, Any]:
    """A PCM .wav file as `{"array": float32 in [-1, 1], "sampling_rate": int}`, the layout datasets.Audio gives;
    its rate and length are checked from the header, before the samples are read."""
    if path.startswith(("http://", "https://")):
        raise ValueError(f"Audio URLs are not fetched ({path}): download the file and pass its path.")
    with wave.open(path, "rb") as handle:
        width, channels, rate = handle.getsampwidth(), handle.getnchannels(), handle.getframerate()
        check_clip(rate, handle.getnframes(), max_seconds)
        data = handle.readframes(handle.getnframes())
    dtypes = {1: np.uint8, 2: np.int16, 4: np.int32}
    if width not in dtypes:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported; convert the file to 16-bit PCM.")
    by_channel = pcm_to_float(np.frombuffer(data, dtype=dtypes[width])).reshape(-1, channels).T
    return {"array": by_channel[0] if channels == 1 else by_channel, "sampling_rate": rate}


def mono_waveform(raw: Any, target_rate: int, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """One clip as a finite mono float32 array at `target_rate`.

    Takes what `datasets.Audio` gives (`{"array", "sampling_rate"}`), the audio pipeline's `{"raw", "sampling_rate"}`,
    a path to a .wav file, or a plain array (read as already at `target_rate`). Integer arrays are PCM (`PCM_TYPES`).
    Multi-channel audio is averaged to mono; another sampling rate is resampled with `scipy.signal.resample_poly`,
    whose low-pass filter removes what lies above the new Nyquist frequency instead of folding it into the band the
    model hears.
    """
    if isinstance(raw, str):
        raw = read_wav(raw, max_seconds)
    rate = target_rate
    if isinstance(raw, dict):
        key = "array" if "array" in raw else "raw" if "raw" in raw else None
        if key is None:
            raise ValueError(f"An audio dict needs its samples under `array` (or `raw`); got keys {sorted(raw)}.")
        rate = target_rate if raw.get("sampling_rate") is None else int(raw["sampling_rate"])
        raw = raw[key]
    if isinstance(raw, torch.Tensor):
        raw = raw.detach().cpu().numpy()
    samples = np.asarray(raw)
    if samples.ndim not in (1, 2):
        raise ValueError(
            f"Expected a mono (samples,) or multi-channel (channels, samples) waveform, got shape {samples.shape}."
        )
    check_clip(rate, max(samples.shape), max_seconds)
    samples = pcm_to_float(samples).astype(np.float64)
    if samples.ndim == 2:
        channel_axes = [axis for axis, size in enumerate(samples.shape) if size <= MAX_CHANNELS]
        if len(channel_axes) != 1:
            raise ValueError(
                f"Which axis of a waveform of shape {samples.shape} holds the channels? It is the one axis of at most "
                f"{MAX_CHANNELS} entries: give (channels, samples) or (samples, channels), or a mono array."
            )
        samples = samples.mean(axis=channel_axes[0])
    if not np.isfinite(samples).all():
        raise ValueError("The audio holds NaN or infinite samples: clean or drop this clip.")
    if rate != target_rate and samples.size:
        from scipy.signal import resample_poly  # imported here: `import icpc_hf` stays light for other modalities

        divisor = math.gcd(rate, target_rate)
        samples = resample_poly(samples, target_rate // divisor, rate // divisor)
    window = round(WINDOW_SECONDS * target_rate)
    if samples.size < window:
        raise ValueError(
            f"A clip of {samples.size} samples at {target_rate} Hz is shorter than one {window}-sample analysis window "
            "and gives no spectrogram frame: drop it or pad it with silence."
        )
    return samples.astype(np.float32)
