"""What the trained model ships with: its cascade calibrated on the evaluation set at the end of training, or full
size alone when it cannot be calibrated (an uncalibrated cascade can be slower than plain inference)."""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
from collections.abc import Iterator
from typing import Any

from ..config import ICPCConfig
from ..patching import base_model_of, icpc_settings, patch_model
from .calibrate import Calibration, calibrate_thresholds, check_target
from .eval_set import dataset_description, eval_features, labels_of
from .ship_check import ShipCheck, calibrate_and_check, check_settings

logger = logging.getLogger(__name__)

CALIBRATION_PRESETS = {"best_level": {"max_accuracy_loss": 0.0, "reference": "best_level"}}
"""Named calibration targets: `best_level` is the cheapest cascade no less accurate than the best single level."""
CALIBRATION_KEYS = tuple(
    name
    for name in inspect.signature(calibrate_thresholds).parameters
    if name not in ("model", "features", "processor", "labels")
)


def calibration_target(calibrate: Any) -> dict[str, Any] | None:
    """The `calibrate_thresholds` keywords that ICPCCallback's `calibrate` asks for; None when it is off."""
    if calibrate is False:
        return None
    if calibrate is True:
        calibrate = "best_level"
    if isinstance(calibrate, str) and calibrate in CALIBRATION_PRESETS:
        return dict(CALIBRATION_PRESETS[calibrate])
    if not isinstance(calibrate, dict):
        raise ValueError(
            f"Unknown calibration target {calibrate!r}: use 'best_level', a dict such as "
            "{'max_accuracy_loss': 0.003}, {'target_speedup': 2.0} or {'min_accuracy': 0.92}, or False to keep the "
            "cascade as configured."
        )
    unknown = sorted(set(calibrate) - set(CALIBRATION_KEYS))
    if unknown:
        raise ValueError(
            f"Unknown calibration setting(s) {unknown}: the `calibrate` dict takes the keywords of "
            f"`icpc_hf.training.calibrate.calibrate_thresholds` ({', '.join(CALIBRATION_KEYS)})."
        )
    check_target(
        calibrate.get("max_accuracy_loss"),
        calibrate.get("target_speedup"),
        calibrate.get("reference", "full"),
        calibrate.get("min_accuracy"),
    )
    return dict(calibrate)


def check_calibration_levels(target: dict[str, Any], icpc: ICPCConfig) -> None:
    """Refuse a calibration with one level to choose from: there is nothing to calibrate."""
    levels = target.get("levels") or [*(icpc.cascade_levels or []), *(icpc.levels or [])]
    if len(set(levels)) < 2:
        raise ValueError(
            f"ICPCCallback was asked to calibrate the cascade, but it has one level ({list(levels)}): there is "
            "nothing to calibrate. Give two or more levels (`ICPCConfig(cascade_levels=[0.5, 1.0])`, or "
            "`ICPCCallback(calibrate={..., 'levels': [0.5, 1.0]})`), or pass `ICPCCallback(calibrate=False)`."
        )


UNSHIPPED_FOLDER = "icpc-unshipped"
"""Where, under `output_dir`, the trained weights are saved when shipping the cascade fails at the end of training."""


def save_unshipped(model: Any, trainer: Any, folder: str) -> None:
    """Save the trained weights and config, without the `custom_pipelines` entry: the folder holds no pipeline code
    and no calibrated cascade, so it must not claim to be servable."""
    config = base_model_of(model).config
    entry = config.__dict__.pop("custom_pipelines", None)
    try:
        if trainer is not None:
            trainer.save_model(folder, _internal_call=True)  # every rank joins (FSDP gathers), no Hub push
        else:
            base_model_of(model).save_pretrained(folder)
    finally:
        if entry is not None:
            config.custom_pipelines = entry


def serve_full_size(model: Any) -> None:
    """Serve full size alone: never slower than plain inference, which an uncalibrated cascade can be."""
    settings = icpc_settings(model).to_dict()
    if settings["cascade_levels"] != [1.0]:
        settings["cascade_levels"] = [1.0]
        patch_model(model, ICPCConfig.from_dict(settings))


class CascadeShipping:
    """The end-of-training step that decides the served cascade (`ship`), and what the model card says of it."""

    def __init__(
        self,
        calibrate: str | dict[str, Any] | bool = "best_level",
        ship_check: Any = True,
        unshipped_dir: str | None = None,
    ) -> None:
        self.target = calibration_target(calibrate)
        self.check = check_settings(ship_check)
        """The held-out check a calibrated cascade must pass to ship (ship_check.py); None: off."""
        self.ship_check: ShipCheck | None = None
        """What the last held-out check measured."""
        self.unshipped_dir = unshipped_dir
        """Where to save the trained weights if the end of training fails; None: `output_dir`/`UNSHIPPED_FOLDER`."""
        """`calibrate_thresholds` keywords for the end-of-training calibration; None: calibration off."""
        self.calibration: Calibration | None = None
        """The last end-of-training calibration, every point searched included (see `Calibration.frontier`)."""
        self.missing = "calibration on the evaluation set runs at the end of training, after this save"
        """Why the card has no accuracy figures, while `calibration` is None."""
        self.dataset: dict[str, Any] = {}
        """The evaluation set as the card names it (`dataset_description`)."""
        self._warned_no_eval = False

    @contextlib.contextmanager
    def saved_on_failure(self, args: Any, model: Any, trainer: Any) -> Iterator[None]:
        """Around the end-of-training steps (compensation, calibration, shipping): if one fails, the trained
        weights are saved first (`save_unshipped`) and the error says where, so a run with `save_strategy="no"`
        does not lose its model to a failure after its last step."""
        try:
            yield
        except Exception as error:
            if model is None:
                raise
            folder = self.unshipped_dir or os.path.join(args.output_dir, UNSHIPPED_FOLDER)
            save_unshipped(model, trainer, folder)
            raise RuntimeError(
                f"The end of training failed while compensating the levels or shipping the cascade "
                f"({type(error).__name__}: {error}). The trained weights are saved in {folder} (not servable as "
                "saved): load them, then calibrate and save with "
                "`icpc_hf.training.calibrate.calibrate_thresholds(...).apply(model)` and `icpc_hf.save_for_hub`."
            ) from error

    def ship(self, model: Any, trainer: Any, eval_dataloader: Any, processor: Any) -> dict[str, Any] | None:
        """Calibrate `model`'s cascade on the evaluation set (`eval_features`) and apply it, or serve full size
        alone when there is none or no setting meets the target; returns the `icpc/` figures of an applied one."""
        if self.target is None or model is None:
            self.missing = "calibration was turned off (`ICPCCallback(calibrate=False)`)"
            return None
        icpc = icpc_settings(model)
        features = eval_features(trainer, eval_dataloader)
        if features is None:
            self.missing = (
                "the Trainer had no evaluation set (pass `eval_dataset=` with `eval_strategy`, or call "
                "`callback.attach(trainer)`)"
            )
            if not self._warned_no_eval:
                logger.warning(
                    "ICPCCallback saw no evaluation set (the Trainer ran no evaluation and none was attached), so it "
                    "cannot calibrate the cascade; the model will serve full size alone (cascade_levels [1.0], was "
                    "%s), as an uncalibrated cascade can be slower than plain inference. Evaluate during training "
                    "(`eval_strategy`) or call `callback.attach(trainer)` to calibrate, or pass "
                    "`ICPCCallback(calibrate=False)` to keep the configured cascade.",
                    icpc.cascade_levels,
                )
                self._warned_no_eval = True
            serve_full_size(model)
            return None
        check_calibration_levels(self.target, icpc)
        labels = labels_of(features)
        self.dataset = dataset_description(features)
        # Every rank runs this on the whole evaluation set with the same weights: the same result everywhere.
        if self.check is None:
            calibration, self.ship_check = calibrate_thresholds(model, features, processor, labels, **self.target), None
        else:
            calibration, self.ship_check = calibrate_and_check(
                model, features, processor, labels, self.target, self.check
            )
        self.calibration = calibration
        chosen = calibration.chosen
        if chosen is not None and self.ship_check is not None and not self.ship_check.ships:
            logger.warning(
                "The cascade calibrated on half the evaluation set did not hold on the other half (%s): serving full "
                "size alone. More evaluation samples narrow the bound; `ICPCCallback(ship_check=False)` ships "
                "the calibrated cascade unchecked.",
                self.ship_check.reason,
            )
            serve_full_size(model)
            return None
        if chosen is None:
            logger.warning(
                "No cascade setting met the calibration target %s on the evaluation set (the cheapest costs %.3g of "
                "a full-size pass): serving full size alone. Relax the target, or apply a point of "
                "`callback.calibration.frontier()` with `Calibration.apply`.",
                self.target,
                min(p.cost for p in calibration.points),
            )
            serve_full_size(model)
            return None
        calibration.apply(model)
        figures = {
            "icpc/calibrated_accuracy": chosen.accuracy,
            "icpc/calibrated_cost": chosen.cost,
            "icpc/calibrated_speedup_est": 1.0 / chosen.cost if chosen.cost > 0 else math.inf,
            "icpc/calibrated_levels": ", ".join(f"{lv:g}" for lv in chosen.levels),
            "icpc/calibrated_thresholds": ", ".join(f"{t:g}" for t in chosen.thresholds),
            "icpc/full_size_accuracy": calibration.full_accuracy,
            "icpc/best_level_accuracy": calibration.best_level_accuracy,
        }
        if self.ship_check is not None:
            logger.info("ICPC cascade checked before shipping: %s.", self.ship_check.reason)
        logger.info(
            "ICPC cascade calibrated on %d evaluation samples: levels [%s], thresholds [%s]; predicted accuracy "
            "%.4f (full size %.4f, best single level %.4f) at %.3g of a full-size pass (%.2fx).",
            len(labels) if self.ship_check is None else self.ship_check.calibrated_on,
            figures["icpc/calibrated_levels"],
            figures["icpc/calibrated_thresholds"],
            chosen.accuracy,
            calibration.full_accuracy,
            calibration.best_level_accuracy,
            chosen.cost,
            figures["icpc/calibrated_speedup_est"],
        )
        return figures
