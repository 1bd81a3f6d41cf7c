"""ICPCCallback: per-epoch level draws inside a plain Trainer, what compression saved in Trainer's logs, and a
cascade calibrated on the evaluation set at the end of training. The callback only routes the Trainer's events;
each job is a part in `icpc_hf.training`, testable without a Trainer."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from ..patching import icpc_settings
from ..previous_names import old_attribute
from .accounting import TrainingAccount
from .compensate import LevelCompensation
from .distill import SmallestLevelDistillation
from .levels import RunLevels, install_levels
from .model_card import Measured
from .preflight import check_before_training, training_processor
from .publishing import Publisher
from .shipping import CascadeShipping
from .trainer_link import TrainerLink


class ICPCCallback(TrainerCallback, ExportableState):
    """Draw each epoch's compression levels and log what they saved.

    Logged with every training log (so TensorBoard, W&B and the console see them): `icpc/tokens_per_sample`,
    `icpc/token_ratio` (compressed over uncompressed tokens) and `icpc/flops_saved` (the estimated share of
    encoder FLOPs saved), over the batches since the previous log.

    The level plan is a pure function of the settings and the epoch, and Trainer skips the batches already
    trained when resuming, so `train(resume_from_checkpoint=...)` continues the same schedule; the settings that
    determine it are saved in the checkpoint's trainer state, and resuming with different ones raises. With
    `ICPCConfig(schedule="adaptive")` each evaluation during training moves the levels of the next epoch.

    At the end of training it calibrates the served cascade on the evaluation set (levels and thresholds, with
    `calibrate_thresholds`) and stores it in `config.icpc`, so saving or serving the model needs no extra step.
    `calibrate`: `"best_level"` (default: the cheapest cascade no less accurate than the model's best single
    level), a dict of `calibrate_thresholds` keywords such as `{"target_speedup": 2.0}`, or False to keep the
    cascade as configured. The evaluation set is the Trainer's `eval_dataset`, with or without evaluations during
    training: the callback finds the Trainer that calls it and attaches itself (`attach`). Without one the served
    cascade becomes full size alone, because an uncalibrated cascade can be slower than plain inference. What
    calibration needs of the evaluation set is checked before the first step; if the end of training still fails
    (compensation, calibration, shipping), the trained weights are saved first, in `unshipped_dir` (default
    `output_dir/icpc-unshipped`), and the error says where.

    `compensate` (default: on whenever the cascade is calibrated): before calibrating, each level below full size of an image, audio or video model
    learns its own small embedding parameters from the full-size model's answers on the training set, the backbone
    frozen (`icpc_hf.training.compensate_levels`; full size is untouched); a dict of its keywords tunes it, False
    turns it off. Text models are skipped: their levels are pruned texts the model cannot tell apart by level.

    `ship_check` (default True): the cascade is calibrated on half the evaluation set and ships only when, on the
    other half, its accuracy loss against full size is at most 1 point at 95% confidence (a dict such as
    `{"max_loss": 0.02, "confidence": 0.9}` changes those); otherwise the model serves full size alone. False ships
    the cascade calibrated on the whole set, unchecked.

    `publish` (default True) makes the Trainer's own saves servable (docs/guides/hub.md): the model's config gets the
    `custom_pipelines` entry, and the processor, the pipeline code and a model card with what this callback
    measured are written into every checkpoint (`on_save`), into `output_dir` before every push (`on_push_begin`)
    and at the end of training, so `trainer.save_model()` completes a servable folder.
    """

    def __init__(
        self,
        calibrate: str | dict[str, Any] | bool = "best_level",
        publish: bool = True,
        compensate: bool | dict[str, Any] | None = None,
        ship_check: bool | dict[str, Any] = True,
        unshipped_dir: str | None = None,
    ) -> None:
        self.compensation = LevelCompensation(calibrate is not False if compensate is None else compensate)
        self.run_levels = RunLevels()
        self.account = TrainingAccount()
        self.distillation = SmallestLevelDistillation()
        self.shipping = CascadeShipping(calibrate, ship_check, unshipped_dir)
        self.publisher = Publisher(publish)
        self.link = TrainerLink()

    # What users and reports read stays on the callback; Trainer sets `plan_record` and `schedule_state` when it
    # restores a checkpoint's state.
    publish = property(
        lambda self: self.publisher.enabled,
        lambda self, on: setattr(self.publisher, "enabled", on),
        doc="Write the pipeline code, processor and model card beside the Trainer's saves.",
    )
    calibration_target = property(
        lambda self: self.shipping.target,
        doc="`calibrate_thresholds` keywords for the end-of-training calibration; None: off.",
    )
    calibration = property(
        lambda self: self.shipping.calibration,
        doc="The last end-of-training calibration, every point searched included.",
    )
    levelled_collate = property(
        lambda self: self.run_levels.levelled_collate,
        doc="The train DataLoader's collate function during training: its `plan` holds each batch's level.",
    )
    plan_record = property(
        lambda self: self.run_levels.record,
        lambda self, value: setattr(self.run_levels, "record", value),
        doc="What determines the level plan (`levels.plan_record`), saved in checkpoints.",
    )
    schedule_state = property(
        lambda self: self.run_levels.schedule_state(),
        lambda self, saved: None,  # restored by the Trainer; `RunLevels.begin` reads it from the checkpoint itself
        doc="The schedule's state (the `adaptive` floor and best metric so far), saved in checkpoints; None: none.",
    )
    levels = old_attribute("ICPCCallback", "levels", "levelled_collate")
    schedule = old_attribute("ICPCCallback", "schedule", "plan_record", warn_on_set=False)
    adaptive = old_attribute("ICPCCallback", "adaptive", "schedule_state", warn_on_set=False)
    train_totals = property(
        lambda self: self.account.train_totals,
        doc="Samples, tokens and estimated FLOPs trained so far, compressed and full.",
    )

    def attach(self, trainer: Any) -> Any:
        """Put the callback first in the trainer's callbacks and let it read `trainer.eval_dataset`; returns trainer.

        The callback does this by itself when the Trainer first calls it (`on_init_end`, or `on_train_begin` for a
        callback added later); calling it by hand stays harmless. Two things need it, both because callback events
        carry neither the Trainer nor its other callbacks:
        reporting (`report_to`: TensorBoard, W&B...) sees the `icpc/` figures only when this callback adds them to
        the logs before the reporting callbacks, which the Trainer places ahead of the user's; and calibration with
        `eval_strategy="no"` needs the evaluation set, which events carry only once an evaluation has run.
        """
        self.link.attach(self, trainer)
        return trainer

    def state(self) -> dict[str, Any]:
        attributes = {"plan_record": self.plan_record}
        if self.schedule_state is not None:
            attributes["schedule_state"] = self.schedule_state
        return {"args": {}, "attributes": attributes}

    def measured(self) -> Measured:
        """What the model card reports: the calibration (or why there is none) and the training totals."""
        missing = None if self.calibration is not None else self.shipping.missing
        return Measured(
            calibration=self.calibration, train_totals=dict(self.train_totals), missing=missing, **self.shipping.dataset
        )

    def push_model_card(self, trainer: Any, commit_message: str = "ICPC model card") -> Any:
        """Upload the ICPC card as README.md to the repository `trainer.push_to_hub()` pushed to."""
        return self.publisher.push_model_card(trainer, self.measured(), commit_message)

    def on_init_end(self, args, state, control, **kwargs):
        self.link.find(self)

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        self.link.find(self)  # a callback added after the Trainer was built saw no on_init_end
        icpc = icpc_settings(model)
        self.run_levels.begin(icpc, state, train_dataloader, type(self).__name__)
        processing_class = kwargs.get("processing_class")
        processor = training_processor(train_dataloader, processing_class)
        trainer = self.link.trainer
        check_before_training(
            args,
            icpc,
            stream=self.run_levels.stream,
            calibration_target=self.calibration_target,
            has_eval_set=trainer is not None and trainer.eval_dataset is not None,
            processor=processor or processing_class,
            publish=self.publish,
            trainer=trainer,
            min_eval_samples=1 if self.shipping.check is None else 2,
        )
        self.publisher.begin(model, processor or processing_class)
        self.run_levels.install(model, icpc, train_dataloader, processor, state.global_step)
        self.account.start(model, icpc)
        self.distillation.start(model, icpc)

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.run_levels.epoch_begin(args, state, train_dataloader)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.run_levels.evaluated(args, metrics)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs:
            return
        figures = self.account.figures_since_last_log()
        if figures is not None:
            self.link.add_to_log(args, state, logs, figures)

    def on_save(self, args, state, control, model=None, **kwargs):
        self.publisher.checkpoint_saved(args, state, model, self.measured())

    def on_push_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        self.publisher.push_begins(args, model, train_dataloader, kwargs.get("processing_class"), self.measured())

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.account.stop()
        self.distillation.stop()
        processor = training_processor(kwargs.get("train_dataloader"), kwargs.get("processing_class"))
        with self.shipping.saved_on_failure(args, model, self.link.trainer):
            compensated = self.compensation.run(model, self.link.trainer, processor, seed=args.seed)
            figures = self.shipping.ship(model, self.link.trainer, kwargs.get("eval_dataloader"), processor)
        figures = {**(compensated or {}), **(figures or {})} or None
        if figures is not None:
            self.link.log(self, args, state, control, figures, model=model, **kwargs)
        self.publisher.end(args, model, self.measured())


__all__ = ["ICPCCallback", "install_levels"]
