"""The evaluation set end-of-training calibration reads: found on the Trainer, its labels, how the card names it,
and the checks of it that run before the first step."""

from __future__ import annotations

from typing import Any

from ..config import ICPCConfig
from ..registry import registration_for


def labels_of(features: Any) -> list[int]:
    """One class index per evaluation sample, from its `label` or `labels`; raises with the fix otherwise."""
    missing = ValueError(
        "ICPCCallback calibrates the cascade on the evaluation set, which needs a class index per sample in a "
        "`label` or `labels` field: add one to the eval_dataset, or pass `ICPCCallback(calibrate=False)`."
    )
    column_names = getattr(features, "column_names", None)
    if column_names is not None:  # a datasets.Dataset: read one column, without running a transform
        key = next((k for k in ("label", "labels") if k in column_names), None)
        if key is None:
            raise missing
        raw = features.with_format(None) if hasattr(features, "with_format") else features
        values = list(raw[key])
    else:
        values = []
        for index in range(len(features)):
            sample = features[index]
            key = next((k for k in ("label", "labels") if isinstance(sample, dict) and k in sample), None)
            if key is None:
                raise missing
            values.append(sample[key])
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(
            "Cascade calibration needs one class index per evaluation sample (single-label classification); got "
            f"{values[0]!r}. Pass `ICPCCallback(calibrate=False)` for other tasks."
        ) from None


def dataset_description(features: Any) -> dict[str, Any]:
    """The evaluation set as the model card names it: a Hub dataset by its builder name, config and split."""
    info = getattr(features, "info", None)
    name = getattr(info, "dataset_name", None) or getattr(features, "builder_name", None)
    if not name or name in ("csv", "json", "pandas", "parquet", "text", "arrow", "generator"):
        return {}
    split = getattr(features, "split", None)
    return {
        "dataset_type": name,
        "dataset_name": name,
        "dataset_config": getattr(features, "config_name", None),
        "dataset_split": str(split) if split is not None else None,
    }


def eval_features(trainer: Any, eval_dataloader: Any) -> Any:
    """The evaluation samples, as the data collator takes them: the `trainer`'s evaluation set when it has one,
    else the last evaluation's; None when neither is known."""
    if trainer is not None and trainer.eval_dataset is not None:
        if not isinstance(trainer.eval_dataset, dict):
            eval_dataloader = trainer.get_eval_dataloader()  # with the columns the Trainer would pass
        elif eval_dataloader is None:  # several sets, none evaluated (else: the last one evaluated)
            raise ValueError(
                f"The Trainer has several evaluation sets ({', '.join(map(str, trainer.eval_dataset))}) and "
                "the cascade is calibrated on one: set `trainer.eval_dataset` to the one to calibrate on "
                "before `train()`, or pass `ICPCCallback(calibrate=False)`."
            )
    if eval_dataloader is None:
        return None
    features = eval_dataloader.dataset
    if not hasattr(features, "__len__") or not hasattr(features, "__getitem__"):
        raise ValueError(
            f"Cascade calibration reads the evaluation set by index, and {type(features).__name__} has no "
            "length: use a map-style eval_dataset (e.g. a datasets.Dataset), or `ICPCCallback(calibrate=False)`."
        )
    return features


def check_calibration_data(
    trainer: Any, icpc: ICPCConfig, processor: Any, evaluates: bool, min_samples: int = 1
) -> None:
    """Refuse, before the first step rather than after the last, what end-of-training calibration would refuse:
    several evaluation sets with no evaluation to pick one (`evaluates`: the Trainer evaluates during training),
    a set without a length or with fewer than `min_samples` (2 for the ship check's two halves), a first sample
    without a class index or that the cascade cannot collate. Each set is read as the Trainer passes it
    (`get_eval_dataloader`: its columns)."""
    sets = trainer.eval_dataset
    names = list(sets) if isinstance(sets, dict) and evaluates else [None]
    for name in names:
        features = eval_features(trainer, None if name is None else trainer.get_eval_dataloader(name))
        if len(features) < min_samples:
            raise ValueError(
                f"The evaluation set has {len(features)} sample(s), and the cascade is calibrated on it at the end of "
                f"training (on one half, checked on the other: at least {min_samples}): give the Trainer a larger "
                "`eval_dataset`, pass `ICPCCallback(ship_check=False)`, or `ICPCCallback(calibrate=False)`."
            )
        labels_of(features if hasattr(features, "column_names") else [features[0]])
        try:
            registration_for(icpc.model_type).modality.collate(processor, [features[0]], 1.0, icpc)
        except ValueError as error:
            raise ValueError(
                f"The cascade is calibrated on the evaluation set at the end of training, and its first sample "
                f"cannot be collated: {error} (Keep its input columns with `TrainingArguments("
                "remove_unused_columns=False)`, or pass `ICPCCallback(calibrate=False)`.)"
            ) from error
