"""ICPCConfig: every ICPC setting, validated on construction and stored as JSON in `model.config.icpc`."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

POSITION_STRATEGIES = ("crop", "stride", "interpolate")
CONFIG_KEY = "icpc"


def as_float_list(name: str, values: Any) -> list[float]:
    """`values` (one number or several) as floats, or a TypeError naming the setting."""
    if isinstance(values, (int, float)):
        values = [values]
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a list of numbers, got {values!r}.") from None


def check_flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")


def as_thresholds(thresholds: Any, allow_empty: bool = True) -> list[float]:
    """`thresholds` (one or several) as floats, or the error that names their range."""
    values = as_float_list("thresholds", thresholds)
    if (not values and not allow_empty) or any(not 0.0 <= t <= 1.0 for t in values):
        raise ValueError(f"`thresholds` must be probabilities in [0, 1], got {thresholds!r}.")
    return values


@dataclass
class ICPCConfig:
    """Settings of Input Compression with Positional Consistency.

    A *level* is the fraction of the full input size kept along each compressed axis: 1.0 is the uncompressed
    input, 0.5 an image of half the side (a quarter of the patches), a spectrogram of half the frames, or a text
    that keeps half of its insignificant words. Fields left as `None` are derived from the model's config by
    `patch_model`, which also fills `model_type` and `geometry`.
    """

    levels: list[float] | None = None
    """Training levels, drawn per sample per epoch. `None`: every whole-patch size from `min_level` up to 1."""
    level_weights: list[float] | None = None
    """Relative probability of each training level (`None`: uniform)."""
    position_strategy: str | None = None
    """How a compressed grid takes positions from the full table: `crop`, `stride` or `interpolate`. `None`
    (default): `crop` for a fresh table, `interpolate` for one that has learned the grid's layout (a pretrained
    checkpoint), the strategy saved in `config.icpc` for a model that has one (docs/results/selection-rounds.md)."""
    cascade_levels: list[float] | None = None
    """Levels tried at inference, cheapest first; the last one always answers. `None`: derived from `levels`."""
    thresholds: float | list[float] = 0.9
    """Top-class probability at which a cascade level's answer is accepted: one value, or one per level but the last."""
    uncompressed_last_epochs: int = 0
    """Train the last N epochs on uncompressed inputs only."""
    schedule: str | None = None
    """How the level draw moves over the run: the name of a schedule of icpc_hf.training.schedules, e.g.
    `progressive` or `constant` (docs/guides/collator.md). `None`: the modality's, chosen by the selection rule
    (docs/reference/selection-rule.md)."""
    distill_smallest: bool = False
    """Training: each step also trains the smallest level on the step's own prediction (docs/guides/collator.md)."""
    target_speedup: float | None = None
    """A training budget instead of hand-picked weights: `level_weights` are derived so that the mean cost of a
    training sample is 1 / target_speedup of a full-size one (estimated from the token counts of the levels)."""
    seed: int = 0
    """Seed of the per-sample, per-epoch level draw."""
    min_level: float = 0.3
    """Smallest level of the derived default `levels`."""
    axes: list[str] | None = None
    """Axes a level shrinks (e.g. `["time"]` or `["time", "frequency"]` for audio). `None`: the modality's default."""
    trim_padding: bool = False
    """Audio: drop the trailing padding frames a batch's longest clip does not need (whole patches; `crop` positions)."""
    stop_words: list[str] | None = None
    """Text: the words counted as insignificant besides punctuation. `None`: the built-in English list."""
    text_scorer: str | None = None
    """Text: which words a level drops. `importance`: a level is the share of ALL words kept, least important first.
    `stop_words`: the share of stop words and punctuation kept. `None` (default): importance where word scores exist
    (ICPCCallback fits them), else stop words (docs/guides/text.md)."""
    word_scores: dict[str, Any] | None = None
    """Text, `importance` scorer: what `icpc_hf.fit_word_scores` returns. `None`: ICPCCallback fits them on the
    train dataset. Saved in `config.icpc`, so the pipeline prunes the same way."""
    level_compensation: dict[str, Any] | None = None
    """Set by `compensate_levels`: levels with their own parameters."""
    model_type: str | None = None
    """Set by `patch_model`: the `config.model_type` these settings were resolved for."""
    geometry: dict[str, Any] | None = None
    """Set by `patch_model`: the input geometry of the model (sizes, patch sizes, full grid)."""

    def __post_init__(self) -> None:
        if self.levels is not None:
            self.levels = sorted(set(self._check_levels("levels", self.levels)))
        if self.cascade_levels is not None:
            self.cascade_levels = sorted(set(self._check_levels("cascade_levels", self.cascade_levels)))
        if self.position_strategy is not None and self.position_strategy not in POSITION_STRATEGIES:
            raise ValueError(
                f"Unknown `position_strategy` {self.position_strategy!r}: use one of {', '.join(POSITION_STRATEGIES)}."
            )
        thresholds = as_thresholds(self.thresholds, allow_empty=False)
        self.thresholds = thresholds[0] if isinstance(self.thresholds, (int, float)) else thresholds
        if not isinstance(self.seed, int):
            raise TypeError(f"`seed` must be an integer, got {self.seed!r}.")
        if not 0.0 < float(self.min_level) <= 1.0:
            raise ValueError(f"`min_level` must be in (0, 1], got {self.min_level!r}.")
        check_flag("trim_padding", self.trim_padding)
        if self.axes is not None:
            if isinstance(self.axes, str) or not self.axes:
                raise ValueError(f"`axes` must be a non-empty list of axis names, got {self.axes!r}.")
            self.axes = list(self.axes)
        # Text's own fields are checked as text resolves the settings (text_settings.py), those only training
        # reads where training begins (training/settings.py).

    @staticmethod
    def _check_levels(name: str, values: Any) -> list[float]:
        levels = as_float_list(name, values)
        if not levels:
            raise ValueError(f"`{name}` is empty: give at least one level in (0, 1], for example [0.5, 1.0].")
        bad = [v for v in levels if not 0.0 < v <= 1.0]
        if bad:
            raise ValueError(
                f"`{name}` must be fractions of the full input size in (0, 1]; got {bad}. "
                "For a 112-pixel image on a 224-pixel model, write 0.5."
            )
        return levels

    # ------------------------------------------------------------------ cascade
    def thresholds_for(self, cascade_levels: list[float], thresholds: float | list[float] | None = None) -> list[float]:
        """One threshold per cascade level; the last level always answers, so its threshold is 0."""
        values = as_thresholds(self.thresholds if thresholds is None else thresholds)
        steps = len(cascade_levels) - 1
        if steps == 0:  # a single level always answers: no threshold is used
            return [0.0]
        if len(values) == 1:
            values = values * steps
        if len(values) == steps + 1:
            values = values[:steps]
        if len(values) != steps:
            raise ValueError(
                f"{len(values)} thresholds for {len(cascade_levels)} cascade levels: give one threshold, or one per "
                f"level but the last (the last level always answers)."
            )
        return values + [0.0]

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ICPCConfig:
        if isinstance(values, ICPCConfig):
            return values
        if not isinstance(values, dict):
            raise TypeError(f"ICPC settings must be an ICPCConfig or a dict, got {type(values).__name__}.")
        if "model_type" in values and "schedule" not in values:
            # settings resolved and saved before schedules existed were trained with every epoch alike
            values = {**values, "schedule": "constant"}
        if "model_type" in values and "text_scorer" not in values:
            values = {**values, "text_scorer": "stop_words"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            logger.warning("Ignoring unknown ICPC settings %s (saved by another icpc_hf version?)", unknown)
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_json_string(cls, text: str) -> ICPCConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_model_config(cls, model_config: Any) -> ICPCConfig:
        """The settings saved in a model's config (raises when the model was never patched)."""
        stored = getattr(model_config, CONFIG_KEY, None)
        if stored is None:
            raise ValueError(
                f"This {getattr(model_config, 'model_type', 'model')} config has no ICPC settings (`config.icpc`). "
                "Call `icpc_hf.patch_model(model, ICPCConfig())` once before training; the settings are then saved "
                "with the model."
            )
        return cls.from_dict(stored)

    @property
    def is_resolved(self) -> bool:
        return self.model_type is not None and self.geometry is not None and self.levels is not None

    def check_resolved(self, *fields: str) -> ICPCConfig:
        """These settings, or the fix while `fields` (default: all `patch_model` fills) are unset."""
        if any(getattr(self, name) is None for name in fields or ("model_type", "geometry", "levels")):
            raise ValueError(
                "The ICPC settings are not resolved for a model yet: call `patch_model(model, icpc)` with them first, "
                "or pass `model.config.icpc`."
            )
        return self


def as_icpc_config(value: Any) -> ICPCConfig:
    """Accept an ICPCConfig, the dict stored in `config.icpc`, or a model (or model config) holding one."""
    if value is None:
        return ICPCConfig()
    if isinstance(value, ICPCConfig):
        return value
    if isinstance(value, dict):
        return ICPCConfig.from_dict(value)
    if hasattr(value, CONFIG_KEY):
        return ICPCConfig.from_model_config(value)
    if hasattr(getattr(value, "config", None), CONFIG_KEY):  # a patched model, possibly wrapped
        return ICPCConfig.from_model_config(value.config)
    raise TypeError(
        f"Expected an ICPCConfig, a dict of ICPC settings, or a patched model or its config, got "
        f"{type(value).__name__}: call `patch_model(model, ICPCConfig(...))` first and pass the model."
    )


__all__ = ["ICPCConfig", "POSITION_STRATEGIES", "as_icpc_config"]
