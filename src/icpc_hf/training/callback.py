"""ICPCCallback: per-epoch level draws inside a plain Trainer, what compression saved in Trainer's logs, and a
cascade calibrated on the evaluation set at the end of training."""

from __future__ import annotations

import inspect
import logging
import math
import os
import weakref
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .calibrate import Calibration, calibrate_thresholds, check_target
from .collator import collate_layers, tell_collators
from ..config import ICPCConfig
from ..costs import encoder_flops
from .hub import check_processor, mark_servable, write_serving_files
from .model_card import Measured
from ..patching import base_model_of, icpc_settings, patch_model
from ..registry import family_for
from .schedule import LevelledCollate, LevelPlan
from .word_scores import fit_for_training

logger = logging.getLogger(__name__)


def install_levels(dataloader: Any, icpc: Any, num_stages: int | None) -> LevelledCollate:
    """Make a (Trainer- or Accelerate-prepared) train DataLoader collate each batch at its planned level, in place.

    Only the collate function changes: the dataset, sampler, batch size, sharding and workers stay as they are.
    """
    loader = getattr(dataloader, "base_dataloader", dataloader)  # accelerate's adapters forward reads only
    if getattr(loader, "num_workers", 0) and getattr(loader, "persistent_workers", False):
        raise ValueError(
            "ICPC's DataLoader workers learn each pass's plan when they start, and persistent workers start only once: "
            "set `dataloader_persistent_workers=False` (workers are then started again for each epoch)."
        )
    collate = loader.collate_fn
    if isinstance(collate, LevelledCollate):
        collate = collate.collate_fn
    group = 1  # batch dispatching concatenates one batch per process into each step's batch: one level for them
    if type(dataloader).__name__ == "DataLoaderDispatcher" and not getattr(dataloader, "split_batches", False):
        group = dataloader.state.num_processes
    levelled = LevelPlan(icpc, num_stages).bind(collate, group)
    loader.collate_fn = levelled
    return levelled


def has_length(dataloader: Any) -> bool:
    try:
        return len(dataloader) > 0
    except TypeError:  # an iterable dataset: a stream
        return False


def schedule_of(icpc: Any, num_epochs: int | None, num_steps: int | None = None) -> dict[str, Any]:
    """What determines the level plan of every epoch: a resumed run must find the same."""
    return {
        "levels": list(icpc.levels), "level_weights": icpc.level_weights, "seed": icpc.seed,
        "uncompressed_last_epochs": icpc.uncompressed_last_epochs, "num_epochs": num_epochs,
        **({"num_steps": num_steps} if num_steps is not None else {}),  # a stream's schedule moves by steps
        # recorded only when it moves, so checkpoints written before schedules existed still resume
        **({"schedule": icpc.schedule} if icpc.schedule != "constant" else {}),
    }


CALIBRATION_PRESETS = {"best_level": {"max_accuracy_loss": 0.0, "reference": "best_level"}}
"""Named calibration targets: `best_level` is the cheapest cascade no less accurate than the best single level."""
CALIBRATION_KEYS = tuple(
    name for name in inspect.signature(calibrate_thresholds).parameters
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
            f"`icpc_hf.calibrate.calibrate_thresholds` ({', '.join(CALIBRATION_KEYS)})."
        )
    check_target(calibrate.get("max_accuracy_loss"), calibrate.get("target_speedup"),
                 calibrate.get("reference", "full"), calibrate.get("min_accuracy"))
    return dict(calibrate)


def processor_of(train_dataloader: Any, processing_class: Any) -> Any:
    """The processor the data collator uses (ICPCDataCollator.processor), else the Trainer's processing_class."""
    collate = getattr(getattr(train_dataloader, "base_dataloader", train_dataloader), "collate_fn", None)
    for layer in collate_layers(collate, depth=4):
        if hasattr(layer, "processor"):
            return layer.processor
    return processing_class


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
    return {"dataset_type": name, "dataset_name": name, "dataset_config": getattr(features, "config_name", None),
            "dataset_split": str(split) if split is not None else None}


class ICPCCallback(TrainerCallback, ExportableState):
    """Draw each epoch's compression levels and log what they saved.

    Logged with every training log (so TensorBoard, W&B and the console see them): `icpc/tokens_per_sample`,
    `icpc/token_ratio` (compressed over uncompressed tokens) and `icpc/flops_saved` (the estimated share of
    encoder FLOPs saved), over the batches since the previous log.

    The level plan is a pure function of the settings and the epoch, and Trainer skips the batches already
    trained when resuming, so `train(resume_from_checkpoint=...)` continues the same schedule; the settings that
    determine it are saved in the checkpoint's trainer state, and resuming with different ones raises.

    At the end of training it calibrates the served cascade on the evaluation set (levels and thresholds, with
    `calibrate_thresholds`) and stores it in `config.icpc`, so saving or serving the model needs no extra step.
    `calibrate`: `"best_level"` (default: the cheapest cascade no less accurate than the model's best single
    level), a dict of `calibrate_thresholds` keywords such as `{"target_speedup": 2.0}`, or False to keep the
    cascade as configured. The evaluation set is the Trainer's `eval_dataset`, with or without evaluations during
    training: the callback finds the Trainer that calls it and attaches itself (`attach`). Without one the served
    cascade becomes full size alone, because an uncalibrated cascade can be slower than plain inference.

    `publish` (default True) makes the Trainer's own saves servable (docs/guides/hub.md): the model's config gets the
    `custom_pipelines` entry, and the processor, the pipeline code and a model card with what this callback
    measured are written into every checkpoint (`on_save`), into `output_dir` before every push (`on_push_begin`)
    and at the end of training, so `trainer.save_model()` completes a servable folder.
    """

    def __init__(self, calibrate: str | dict[str, Any] | bool = "best_level", publish: bool = True) -> None:
        self.publish = publish
        """Write the pipeline code, processor and model card beside the Trainer's saves."""
        self._processor = None
        self._missing = "calibration on the evaluation set runs at the end of training, after this save"
        self._dataset: dict[str, Any] = {}
        self._training = False
        self.calibration_target = calibration_target(calibrate)
        """`calibrate_thresholds` keywords for the end-of-training calibration; None: calibration off."""
        self.calibration: Calibration | None = None
        """The last end-of-training calibration, every point searched included (see `Calibration.frontier`)."""
        self._trainer_ref: weakref.ReferenceType | None = None
        self._callbacks: list | None = None
        self._warned_no_eval = False
        self._warned_order = False
        self.schedule: dict[str, Any] | None = None
        self.levels: LevelledCollate | None = None
        """The train DataLoader's collate function during training: `levels.plan` holds every batch's level."""
        self._resumed_step: int | None = None
        self._counting = None
        self._model_config = None
        self.train_totals = {"samples": 0, "tokens": 0, "full_tokens": 0, "flops": 0.0, "full_flops": 0.0}
        """Everything trained so far, for reports: samples, tokens and estimated FLOPs, compressed and full."""
        self._totals_at_last_log = dict(self.train_totals)

    def attach(self, trainer: Any) -> Any:
        """Put the callback first in the trainer's callbacks and let it read `trainer.eval_dataset`; returns the trainer.

        The callback does this by itself when the Trainer first calls it (`on_init_end`, or `on_train_begin` for a
        callback added later); calling it by hand stays harmless. Two things need it, both because callback events
        carry neither the Trainer nor its other callbacks:
        reporting (`report_to`: TensorBoard, W&B...) sees the `icpc/` figures only when this callback adds them to
        the logs before the reporting callbacks, which the Trainer places ahead of the user's; and calibration with
        `eval_strategy="no"` needs the evaluation set, which events carry only once an evaluation has run.
        """
        callbacks = trainer.callback_handler.callbacks
        if self in callbacks:
            callbacks.remove(self)
        callbacks.insert(0, self)
        self._callbacks = callbacks
        self._trainer_ref = weakref.ref(trainer)
        return trainer

    def _find_trainer(self) -> None:
        """Attach to the Trainer that is calling this callback, found on the call stack.

        Callback events carry neither the Trainer nor its evaluation set, yet a user who passes
        `Trainer(eval_dataset=val, callbacks=[ICPCCallback()])` without an evaluation schedule expects the served
        cascade to be calibrated on `val`: the README's snippet does exactly that. The Trainer calls its callbacks
        from its own methods, so the nearest frame whose `self` is a Trainer holding this callback is the one.
        """
        if self._trainer_ref is not None:
            return
        from transformers import Trainer

        frame = inspect.currentframe()
        try:
            while frame is not None:
                owner = frame.f_locals.get("self")
                if isinstance(owner, Trainer) and any(
                    c is self for c in getattr(getattr(owner, "callback_handler", None), "callbacks", ())
                ):
                    self.attach(owner)
                    return
                frame = frame.f_back
        finally:
            del frame

    def on_init_end(self, args, state, control, **kwargs):
        self._find_trainer()

    def _eval_features(self, eval_dataloader: Any) -> Any:
        """The evaluation samples, as the data collator takes them; None when the callback can see none."""
        trainer = self._trainer_ref() if self._trainer_ref is not None else None
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

    def _check_calibration_levels(self, icpc: ICPCConfig) -> None:
        levels = self.calibration_target.get("levels") or [*(icpc.cascade_levels or []), *(icpc.levels or [])]
        if len(set(levels)) < 2:
            raise ValueError(
                f"ICPCCallback was asked to calibrate the cascade, but it has one level ({list(levels)}): there is "
                "nothing to calibrate. Give two or more levels (`ICPCConfig(cascade_levels=[0.5, 1.0])`, or "
                "`ICPCCallback(calibrate={..., 'levels': [0.5, 1.0]})`), or pass `ICPCCallback(calibrate=False)`."
            )

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        self._find_trainer()  # a callback added after the Trainer was built saw no on_init_end
        icpc = icpc_settings(model)
        self._model_config = base_model_of(model).config
        if train_dataloader is None:
            raise ValueError("ICPCCallback needs the Trainer's train dataloader; it was not given one.")
        stream = not has_length(train_dataloader)
        if stream and icpc.uncompressed_last_epochs:
            raise ValueError(
                f"`uncompressed_last_epochs={icpc.uncompressed_last_epochs}` counts passes over the data, and a stream "
                "trained for `max_steps` has no epochs to count: set it to 0 (the `progressive` schedule already ends "
                "on the larger levels), or train from a dataset with a length."
            )
        epochs = None if stream else (math.ceil(state.num_train_epochs) if state.num_train_epochs else None)
        steps = state.max_steps if stream else None
        schedule = schedule_of(icpc, epochs, steps)
        stored = (state.stateful_callbacks or {}).get(type(self).__name__)
        saved = stored.get("attributes", {}).get("schedule") if isinstance(stored, dict) else self.schedule
        if saved is not None and state.global_step > 0 and saved != schedule:
            changed = sorted(k for k in schedule if saved.get(k) != schedule[k])
            raise ValueError(
                f"Resuming with ICPC settings that differ from the checkpoint's ({', '.join(changed)}): the run would "
                f"not continue its compression schedule. Restore the settings {saved} or start a new run."
            )
        if self.calibration_target is not None:  # refuse settings that cannot calibrate before training, not after
            trainer = self._trainer_ref() if self._trainer_ref is not None else None
            if args.eval_strategy != "no" or (trainer is not None and trainer.eval_dataset is not None):
                self._check_calibration_levels(icpc)
        self.schedule = schedule
        self._training = True
        if self.publish:
            processing_class = kwargs.get("processing_class")
            self._processor = processor_of(train_dataloader, processing_class) or processing_class
            if self._processor is None and args.push_to_hub:
                raise ValueError(
                    "The Trainer pushes to the Hub, but no processor reaches it: an ICPC model is served with its "
                    "processor. Pass `Trainer(..., processing_class=processor)` (or give it to ICPCDataCollator), or "
                    "`ICPCCallback(publish=False)` to push weights that cannot be served."
                )
            if self._processor is None:
                logger.warning(
                    "ICPCCallback found no processor (give the Trainer `processing_class=`): the Trainer's saves will "
                    "hold the weights only, without the pipeline code or model card that make them servable."
                )
            else:
                mark_servable(model)
        modality = family_for(icpc.model_type).modality
        if modality.pads_to_the_longest and not stream and args.train_sampling_strategy != "group_by_length":
            logger.warning(
                "ICPC prunes words from texts, but random batches still pad every text to the longest one in its "
                "batch: set `TrainingArguments(train_sampling_strategy='group_by_length')` so that the pruning shortens "
                "the padded batches (docs/guides/text.md)."
            )
        fit_for_training(model, train_dataloader, processor_of(train_dataloader, kwargs.get("processing_class")))
        self.levels = install_levels(train_dataloader, icpc, steps if stream else epochs)
        tell_collators(train_dataloader, model)  # `resize_on_device=None` resamples on an accelerator
        self._resumed_step = state.global_step if state.global_step > 0 else None
        self._count_from(model, icpc, modality)

    def _count_from(self, model: Any, icpc: ICPCConfig, modality: Any) -> None:
        """Count what the model trains on, in the process that trains it (batches may be collated in workers)."""
        config = self._model_config

        def count(module, args, inputs):
            if not module.training or args:
                return
            try:
                tokens, full_tokens = modality.batch_tokens(inputs, icpc), modality.full_tokens(inputs, icpc)
            except KeyError:  # not a batch of this modality (e.g. a model called on embeddings)
                return
            totals = self.train_totals
            samples = len(tokens)
            totals["samples"] += samples
            for key, flops_key, values in (("tokens", "flops", tokens), ("full_tokens", "full_flops", full_tokens)):
                totals[key] += int(values.sum())
                totals[flops_key] += float(encoder_flops(values.float(), config).sum())

        if self._counting is not None:
            self._counting.remove()
        # Bookkeeping in Python, not model code: under torch.compile it runs eagerly rather than break the graph.
        self._counting = model.register_forward_pre_hook(torch.compiler.disable(count), with_kwargs=True)

    def state(self) -> dict[str, Any]:
        return {"args": {}, "attributes": {"schedule": self.schedule}}

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        if self.levels is None:
            return
        epoch = int(state.epoch or 0)
        accumulation = args.gradient_accumulation_steps
        stream = train_dataloader is not None and not has_length(train_dataloader)
        steps_per_epoch = state.max_steps if stream else max(1, math.ceil(len(train_dataloader) / accumulation))
        skipped = 0  # batches of a resumed epoch the Trainer skips without loading them
        if self._resumed_step is not None and not args.ignore_data_skip:
            skipped = (self._resumed_step % steps_per_epoch) * accumulation
        self._resumed_step = None
        if stream:  # a stream's skipped batches are read and collated, so they count themselves
            self.levels.set_epoch(epoch, 0, first_step=state.global_step - skipped // accumulation,
                                  accumulation=accumulation)
        else:
            self.levels.set_epoch(epoch, skipped)
            levels, _ = self.levels.plan.distribution(epoch)
            logger.info("ICPC epoch %d draws each batch's level from %s", epoch, levels)

    def on_log(self, args, state, control, logs=None, **kwargs):
        since = {k: v - self._totals_at_last_log[k] for k, v in self.train_totals.items()}
        if logs is None or since["samples"] == 0 or "loss" not in logs:
            return
        if not self._warned_order and self._callbacks is None and args.report_to not in ([], ["none"], "none", None):
            logger.warning(
                "The reporting callbacks (report_to=%s) ran before ICPCCallback, so they miss its icpc/ figures (the "
                "Trainer puts its own callbacks first; the figures still reach `trainer.state.log_history`). Call "
                "`callback.attach(trainer)` after creating the Trainer to put ICPCCallback first.", args.report_to,
            )
            self._warned_order = True
        logs["icpc/tokens_per_sample"] = since["tokens"] / since["samples"]
        logs["icpc/token_ratio"] = since["tokens"] / max(1, since["full_tokens"])
        if since["full_flops"] > 0:
            logs["icpc/flops_saved"] = 1.0 - since["flops"] / since["full_flops"]
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update({k: v for k, v in logs.items() if k.startswith("icpc/")})
        self._totals_at_last_log = dict(self.train_totals)

    def measured(self) -> Measured:
        """What the model card reports: the calibration (or why there is none) and the training totals."""
        return Measured(calibration=self.calibration, train_totals=dict(self.train_totals),
                        missing=None if self.calibration is not None else self._missing, **self._dataset)

    def _publish(self, args, model: Any, folder: str) -> None:
        """Processor, pipeline code and model card beside the weights the Trainer saves in `folder`."""
        if not self.publish or not args.should_save or model is None:
            return
        processor = self._processor
        if processor is None:
            check_processor(processor)  # raises: never a folder that looks servable and is not
        mark_servable(model)
        write_serving_files(model, processor, folder, repo_id=args.hub_model_id, measured=self.measured())

    def on_save(self, args, state, control, model=None, **kwargs):
        if self._processor is not None:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            if os.path.isdir(folder):  # not with a hyperparameter search, whose runs save elsewhere
                self._publish(args, model, folder)

    def on_push_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if self.publish and self._processor is None:
            self._processor = processor_of(train_dataloader, None) or kwargs.get("processing_class")
        self._publish(args, model, args.output_dir)
        if self.publish and not self._training:
            logger.warning(
                "Trainer.push_to_hub() writes its own model card over README.md before uploading, with no callback "
                "event in between: the pushed repository is servable, but its card is the Trainer's. Upload the ICPC "
                "card with its results afterwards: `callback.push_model_card(trainer)`."
            )

    def push_model_card(self, trainer: Any, commit_message: str = "ICPC model card") -> Any:
        """Upload the ICPC card as README.md to the repository `trainer.push_to_hub()` pushed to."""
        from huggingface_hub import HfApi

        repo_id = getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id
        if repo_id is None:
            raise ValueError(
                "The Trainer has no Hub repository yet: call `trainer.push_to_hub()` first, or set "
                "`TrainingArguments(hub_model_id=...)`."
            )
        model = trainer.model
        processor = self._processor or trainer.processing_class
        check_processor(processor)
        folder = trainer.args.output_dir
        write_serving_files(model, processor, folder, repo_id=repo_id, measured=self.measured())
        return HfApi(token=trainer.args.hub_token).upload_file(
            path_or_fileobj=os.path.join(folder, "README.md"), path_in_repo="README.md", repo_id=repo_id,
            commit_message=commit_message, revision=trainer.args.hub_revision,
        )

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self._counting is not None:
            self._counting.remove()
            self._counting = None
        self._calibrate(args, state, control, model=model, **kwargs)
        self._training = False
        if self._processor is not None:  # without one, on_train_begin warned that saves are not servable
            self._publish(args, model, args.output_dir)

    def _calibrate(self, args, state, control, model=None, processing_class=None, train_dataloader=None,
                   eval_dataloader=None, **kwargs):
        if self.calibration_target is None or model is None:
            self._missing = "calibration was turned off (`ICPCCallback(calibrate=False)`)"
            return
        icpc = icpc_settings(model)
        features = self._eval_features(eval_dataloader)
        if features is None:
            self._missing = ("the Trainer had no evaluation set (pass `eval_dataset=` with `eval_strategy`, or call "
                             "`callback.attach(trainer)`)")
            if not self._warned_no_eval:
                logger.warning(
                    "ICPCCallback saw no evaluation set (the Trainer ran no evaluation and none was attached), so it "
                    "cannot calibrate the cascade; the model will serve full size alone (cascade_levels [1.0], was "
                    "%s), as an uncalibrated cascade can be slower than plain inference. Evaluate during training "
                    "(`eval_strategy`) or call `callback.attach(trainer)` to calibrate, or pass "
                    "`ICPCCallback(calibrate=False)` to keep the configured cascade.", icpc.cascade_levels,
                )
                self._warned_no_eval = True
            self._serve_full_size(model)
            return
        self._check_calibration_levels(icpc)
        labels = labels_of(features)
        self._dataset = dataset_description(features)
        # Every rank runs this on the whole evaluation set with the same weights: the same result everywhere.
        calibration = calibrate_thresholds(model, features, processor_of(train_dataloader, processing_class),
                                           labels, **self.calibration_target)
        self.calibration = calibration
        chosen = calibration.chosen
        if chosen is None:
            cheapest = min(p.cost for p in calibration.points)
            logger.warning(
                "No cascade setting met the calibration target %s on the evaluation set (the cheapest costs %.3g of "
                "a full-size pass): serving full size alone. Relax the target, or apply a point of "
                "`callback.calibration.frontier()` with `Calibration.apply`.", self.calibration_target, cheapest,
            )
            self._serve_full_size(model)
            return
        calibration.apply(model)
        logs = {
            "icpc/calibrated_accuracy": chosen.accuracy,
            "icpc/calibrated_cost": chosen.cost,
            "icpc/calibrated_speedup_est": 1.0 / chosen.cost if chosen.cost > 0 else math.inf,
            "icpc/calibrated_levels": ", ".join(f"{lv:g}" for lv in chosen.levels),
            "icpc/calibrated_thresholds": ", ".join(f"{t:g}" for t in chosen.thresholds),
            "icpc/full_size_accuracy": calibration.full_accuracy,
            "icpc/best_level_accuracy": calibration.best_level_accuracy,
        }
        logger.info(
            "ICPC cascade calibrated on %d evaluation samples: levels [%s], thresholds [%s]; predicted accuracy "
            "%.4f (full size %.4f, best single level %.4f) at %.3g of a full-size pass (%.2fx).", len(labels),
            logs["icpc/calibrated_levels"], logs["icpc/calibrated_thresholds"], chosen.accuracy,
            calibration.full_accuracy, calibration.best_level_accuracy, chosen.cost,
            logs["icpc/calibrated_speedup_est"],
        )
        self._log(args, state, control, logs, model=model, processing_class=processing_class,
                  train_dataloader=train_dataloader, eval_dataloader=eval_dataloader, **kwargs)

    @staticmethod
    def _serve_full_size(model: Any) -> None:
        """Serve full size alone: never slower than plain inference, which an uncalibrated cascade can be."""
        settings = icpc_settings(model).to_dict()
        if settings["cascade_levels"] != [1.0]:
            settings["cascade_levels"] = [1.0]
            patch_model(model, ICPCConfig.from_dict(settings))

    def _log(self, args, state, control, logs: dict[str, Any], **kwargs) -> None:
        """What `Trainer.log` does, from a callback: into `state.log_history`, then to every callback's on_log."""
        state.log_history.append({**logs, "epoch": state.epoch, "step": state.global_step})
        for callback in self._callbacks or []:
            if callback is not self:
                callback.on_log(args, state, control, logs=logs, **kwargs)
