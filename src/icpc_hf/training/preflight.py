"""Checks at the start of training: refuse settings that would fail or mislead at the end of a run (calibration,
publishing) before its first step, and warn about settings that waste what compression saves."""

from __future__ import annotations

import logging
from typing import Any

from ..registry import registration_for
from .collator import collate_layers
from .eval_set import check_calibration_data
from .schedules import schedule_for
from .shipping import check_calibration_levels

logger = logging.getLogger(__name__)


def training_processor(train_dataloader: Any, processing_class: Any) -> Any:
    """The processor the data collator uses (ICPCDataCollator.processor), else the Trainer's processing_class."""
    collate = getattr(getattr(train_dataloader, "base_dataloader", train_dataloader), "collate_fn", None)
    for layer in collate_layers(collate, depth=4):
        if hasattr(layer, "processor"):
            return layer.processor
    return processing_class


def check_servable(processor: Any, push_to_hub: bool) -> None:
    """Refuse to push weights that cannot be served (no processor); warn that saves will hold weights only."""
    if processor is not None:
        return
    if push_to_hub:
        raise ValueError(
            "The Trainer pushes to the Hub, but no processor reaches it: an ICPC model is served with its "
            "processor. Pass `Trainer(..., processing_class=processor)` (or give it to ICPCDataCollator), or "
            "`ICPCCallback(publish=False)` to push weights that cannot be served."
        )
    logger.warning(
        "ICPCCallback found no processor (give the Trainer `processing_class=`): the Trainer's saves will "
        "hold the weights only, without the pipeline code or model card that make them servable."
    )


def warn_about_padding(icpc: Any, args: Any, stream: bool) -> None:
    """Pruned texts shorten a batch only when its texts have similar lengths: say so when batches are random."""
    if (
        registration_for(icpc.model_type).modality.pads_to_the_longest
        and not stream
        and args.train_sampling_strategy != "group_by_length"
    ):
        logger.warning(
            "ICPC prunes words from texts, but random batches still pad every text to the longest one in its "
            "batch: set `TrainingArguments(train_sampling_strategy='group_by_length')` so that the pruning shortens "
            "the padded batches (docs/guides/text.md)."
        )


def check_before_training(
    args: Any,
    icpc: Any,
    *,
    stream: bool,
    calibration_target: dict[str, Any] | None,
    has_eval_set: bool,
    processor: Any,
    publish: bool,
    trainer: Any = None,
    min_eval_samples: int = 1,
) -> None:
    """Every check of the start of training, in order. The calibration's levels are checked only when there will be
    an evaluation set to calibrate on (`has_eval_set` now, or evaluations during training), and its data when the
    `trainer` and its evaluation set are known."""
    schedule_for(icpc).preflight(args)
    if calibration_target is not None and (args.eval_strategy != "no" or has_eval_set):
        check_calibration_levels(calibration_target, icpc)
        if trainer is not None and trainer.eval_dataset is not None:
            evaluates = args.eval_strategy != "no"
            check_calibration_data(trainer, icpc, processor, evaluates, min_samples=min_eval_samples)
    if publish:
        check_servable(processor, args.push_to_hub)
    warn_about_padding(icpc, args, stream)
