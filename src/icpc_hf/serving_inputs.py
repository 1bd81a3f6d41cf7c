"""The serving gate: what `run_cascade` and the ICPC pipelines refuse before any work (docs/reference/bad-inputs.md).
Each check reads a shape or one sum, never copies a batch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import torch

MAX_SIDE = 8192
"""Default largest side (pixels) of a raw image or frame, refused before the processor makes floats of it."""
MAX_SECONDS = 600.0
"""Default longest raw audio clip (seconds at its declared rate), refused before it is resampled."""
SAMPLING_RATES = (1_000, 768_000)
"""The rates (Hz) a clip may declare: a wrong one (1 Hz) would resample it to billions of samples."""


def positive(name: str, value: Any, what: str, integer: bool = False) -> Any:
    """`value` if a finite number above 0 (whole when `integer`), else an error naming `name` and `what` it means."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, Integral if integer else Real):
        raise TypeError(f"`{name}` must be {kind} ({what}), got {value!r}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be {kind} above 0 ({what}), got {value!r}.")
    return value


def check_levels(levels: Any) -> list[float]:
    """Cascade levels, sorted; a bare number is one level, as a bare threshold is one threshold."""
    values = levels if isinstance(levels, Sequence) and not isinstance(levels, str) else [levels]
    if not values or any(isinstance(v, bool) or not isinstance(v, Real) or not 0 < v <= 1 for v in values):
        raise ValueError(
            f"Cascade levels must be a non-empty list of numbers in (0, 1], e.g. [0.5, 1.0], got {levels!r}."
        )
    return sorted({float(v) for v in values})


@dataclass(frozen=True)
class InputLimits:
    """What a pipeline reads of raw inputs: image and frame sides up to `max_side` pixels, audio clips up to
    `max_seconds`, image URLs for `timeout` seconds (Transformers' image pipelines wait forever by default)."""

    max_side: int = MAX_SIDE
    max_seconds: float = MAX_SECONDS
    timeout: float = 10.0

    def __post_init__(self) -> None:
        positive("max_side", self.max_side, "pixels", integer=True)
        positive("max_seconds", self.max_seconds, "seconds of audio")
        positive("timeout", self.timeout, "seconds to wait for a URL")


def check_raw(raw: Any, max_side: int = MAX_SIDE) -> Any:
    """`raw` (an image, a clip, a list of frames) unless a side is over `max_side` pixels, or an array of it holds
    NaN or inf (which the processor would pass on, or refuse in its own words)."""
    for part in raw if isinstance(raw, (list, tuple)) else [raw]:
        shape = getattr(part, "shape", None)  # an array's last three axes: its channels are shorter than its sides
        side = max(tuple(getattr(part, "size", ()) if shape is None else shape)[-3:], default=0)
        if side > max_side:
            raise ValueError(f"A side of {side} pixels is over `max_side={max_side}`: resize it, or raise `max_side`.")
        if not finite(part):
            raise ValueError("A raw input holds NaN or infinite values: clean or drop it.")
    return raw


def finite(values: Any) -> bool:
    """Whether an array or tensor is free of NaN and inf: one sum, the exact check only if the sum is not finite."""
    dtype = getattr(values, "dtype", None)
    if not (getattr(dtype, "is_floating_point", False) or getattr(dtype, "kind", "") == "f"):
        return True
    return math.isfinite(values.sum()) or bool(torch.isfinite(torch.as_tensor(values)).all())


def check_finite(batch: dict[str, Any], samples: torch.Tensor) -> None:
    """Refuse NaN or inf in a collated batch, naming the sample (`samples`: each row's index in the call)."""
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() and not finite(value):
            row = int((~torch.isfinite(value)).reshape(len(value), -1).any(1).nonzero()[0])
            raise ValueError(f"Sample {int(samples[row])}'s `{key}` holds NaN or infinite values: clean or drop it.")


def each(items: Sequence[Any], prepare: Callable[[Any], Any]) -> list[Any]:
    """`prepare` applied to every item; a ValueError names the item's index, to find a call's bad input."""
    prepared = []
    for index, item in enumerate(items):
        try:
            prepared.append(prepare(item))
        except ValueError as error:
            raise ValueError(f"Sample {index}: {error}") from error
    return prepared
