"""Audio in: WAV files and waveforms turned into the mono float signal at the feature extractor's rate."""

from __future__ import annotations

import math
import wave
from typing import Any

import numpy as np
import torch

WINDOW_SECONDS = 0.025
"""The extractor's analysis window (400 samples at 16 kHz): shorter audio gives no spectrogram frame at all."""


def read_wav(path: str) -> dict[str, Any]:
    """A PCM .wav file as `{"array": float32 in [-1, 1], "sampling_rate": int}`, the layout datasets.Audio gives."""
    with wave.open(path, "rb") as handle:
        width, channels, rate = handle.getsampwidth(), handle.getnchannels(), handle.getframerate()
        data = handle.readframes(handle.getnframes())
    dtypes = {1: np.uint8, 2: np.int16, 4: np.int32}
    if width not in dtypes:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported; convert the file to 16-bit PCM.")
    samples = np.frombuffer(data, dtype=dtypes[width]).astype(np.float32)
    if width == 1:
        samples -= 128.0
    samples /= float(2 ** (8 * width - 1))
    by_channel = samples.reshape(-1, channels).T
    return {"array": by_channel[0] if channels == 1 else by_channel, "sampling_rate": rate}


def mono_waveform(raw: Any, target_rate: int) -> np.ndarray:
    """One clip as a finite mono float32 array at `target_rate`.

    Takes what `datasets.Audio` gives (`{"array", "sampling_rate"}`), the audio pipeline's `{"raw", "sampling_rate"}`,
    a path to a .wav file, or a plain array (read as already at `target_rate`). Stereo is averaged to mono; another
    sampling rate is resampled with `scipy.signal.resample_poly`, whose low-pass filter removes what lies above the
    new Nyquist frequency instead of folding it into the band the model hears.
    """
    if isinstance(raw, str):
        raw = read_wav(raw)
    rate = target_rate
    if isinstance(raw, dict):
        key = "array" if "array" in raw else "raw" if "raw" in raw else None
        if key is None:
            raise ValueError(f"An audio dict needs its samples under `array` (or `raw`); got keys {sorted(raw)}.")
        rate = target_rate if raw.get("sampling_rate") is None else int(raw["sampling_rate"])
        raw = raw[key]
    if isinstance(raw, torch.Tensor):
        raw = raw.detach().cpu().numpy()
    samples = np.asarray(raw, dtype=np.float64)
    if samples.ndim == 2:
        channel_axis = int(np.argmin(samples.shape))
        samples = samples.mean(axis=channel_axis)
    if samples.ndim != 1:
        raise ValueError(
            f"Expected a mono (samples,) or multi-channel (channels, samples) waveform, got shape {samples.shape}."
        )
    if not np.isfinite(samples).all():
        raise ValueError("The audio holds NaN or infinite samples: clean or drop this clip.")
    if rate <= 0:
        raise ValueError(f"The sampling rate must be positive, got {rate}.")
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
