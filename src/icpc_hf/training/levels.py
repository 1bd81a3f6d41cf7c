"""The level plan over one training run: installed on the train DataLoader, moved on at each epoch, and the same
plan when a run resumes from a checkpoint (the settings that determine it are kept in the checkpoint)."""

from __future__ import annotations

import logging
import math
from typing import Any

from ..patching import base_model_of
from .collator import tell_collators
from .plan import LevelledCollate, LevelPlan
from .schedules import drawn_levels, schedule_class, schedule_name
from .word_scores import fit_for_training

logger = logging.getLogger(__name__)


def install_levels(dataloader: Any, icpc: Any, num_stages: int | None) -> LevelledCollate:
    """Make a (Trainer- or Accelerate-prepared) train DataLoader collate each batch at its planned level, in place.

    Only the collate function changes: the dataset, sampler, batch size, sharding and workers stay as they are.
    """
    return install_plan(dataloader, LevelPlan(icpc, num_stages))


def install_plan(dataloader: Any, plan: LevelPlan) -> LevelledCollate:
    """`install_levels` with a plan made already (ICPCCallback's, which holds the schedule's resumed state)."""
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
    levelled = plan.bind(collate, group)
    loader.collate_fn = levelled
    return levelled


def has_length(dataloader: Any) -> bool:
    try:
        return len(dataloader) > 0
    except TypeError:  # an iterable dataset: a stream
        return False


def plan_record(icpc: Any, num_epochs: int | None, num_steps: int | None = None) -> dict[str, Any]:
    """What determines the level plan of every epoch, kept in checkpoints: a resumed run must find the same."""
    schedule = schedule_name(icpc)
    return {
        "levels": list(icpc.levels),
        "level_weights": icpc.level_weights,
        "seed": icpc.seed,
        "uncompressed_last_epochs": icpc.uncompressed_last_epochs,
        "num_epochs": num_epochs,
        **({"num_steps": num_steps} if num_steps is not None else {}),  # a stream's schedule moves by steps
        # recorded only when it moves, so checkpoints written before schedules existed still resume
        **({"schedule": schedule} if schedule != "constant" else {}),
    }


class RunLevels:
    """The train DataLoader's level plan during one run, and the settings a resumed run must share with its
    checkpoint. `begin` checks, `install` puts the plan on the DataLoader, `epoch_begin` moves it on."""

    def __init__(self) -> None:
        self.record: dict[str, Any] | None = None
        """`plan_record` of the run: saved in checkpoints (ICPCCallback.state) and compared when resuming."""
        self.levelled_collate: LevelledCollate | None = None
        """The train DataLoader's collate function during training: its `plan` holds every batch's level."""
        self.stream = False
        """Whether the run trains from a stream (no length): its plan moves by optimizer steps, not epochs."""
        self.plan: LevelPlan | None = None
        """The run's level plan, made by `begin`; its schedule's state goes into checkpoints."""
        self._resumed_step: int | None = None

    def begin(self, icpc: Any, state: Any, train_dataloader: Any, name: str) -> None:
        """Take the run's schedule; raise when a stream cannot follow the settings or a resumed run (`state` past
        step 0) changed the settings its checkpoint saved (under the callback's class `name`)."""
        if train_dataloader is None:
            raise ValueError("ICPCCallback needs the Trainer's train dataloader; it was not given one.")
        self.stream = not has_length(train_dataloader)
        if self.stream and icpc.uncompressed_last_epochs:
            raise ValueError(
                f"`uncompressed_last_epochs={icpc.uncompressed_last_epochs}` counts passes over the data, and a stream "
                "trained for `max_steps` has no epochs to count: set it to 0 (the `progressive` schedule already ends "
                "on the larger levels), or train from a dataset with a length."
            )
        if self.stream and schedule_class(schedule_name(icpc)).needs_length:
            raise ValueError(
                f"The `{schedule_name(icpc)}` ICPC schedule moves between passes over the data, and a stream trained "
                "for `max_steps` makes one: use `schedule='progressive'` (it moves by steps), or train from a dataset "
                "with a length."
            )
        epochs = None if self.stream else (math.ceil(state.num_train_epochs) if state.num_train_epochs else None)
        plan = LevelPlan(icpc, state.max_steps if self.stream else epochs)  # checks the training settings
        record = plan_record(icpc, epochs, state.max_steps if self.stream else None)
        stored = (state.stateful_callbacks or {}).get(name)
        attributes = stored.get("attributes", {}) if isinstance(stored, dict) else {}
        # a checkpoint of the previous release keeps the record under `schedule`, the schedule's state under `adaptive`
        saved = attributes.get("plan_record", attributes.get("schedule")) if isinstance(stored, dict) else self.record
        if saved is not None and state.global_step > 0 and saved != record:
            changed = sorted(k for k in record if saved.get(k) != record[k])
            raise ValueError(
                f"Resuming with ICPC settings that differ from the checkpoint's ({', '.join(changed)}): the run would "
                f"not continue its compression schedule. Restore the settings {saved} or start a new run."
            )
        self.record, self.plan = record, plan
        if state.global_step > 0:  # the schedule goes on from where the checkpoint left it
            self.plan.schedule.load_state_dict(attributes.get("schedule_state", attributes.get("adaptive")))

    def schedule_state(self) -> dict[str, Any] | None:
        """The run's schedule state for checkpoints (None when the schedule has none)."""
        return (self.plan.schedule.state_dict() or None) if self.plan is not None else None

    def install(self, model: Any, icpc: Any, train_dataloader: Any, processor: Any, global_step: int) -> None:
        """Ready the train DataLoader: word scores fitted (text), the plan installed, the collators told where the
        model is (`resize_on_device=None` resamples on an accelerator), and a resumed run's step kept for the skip."""
        fit_for_training(model, train_dataloader, processor)
        base = base_model_of(model)
        if base.config.icpc.get("level_weights") != icpc.level_weights:  # the budget's, derived by the plan
            base.config.icpc = icpc.to_dict()
        self.levelled_collate = install_plan(train_dataloader, self.plan)
        tell_collators(train_dataloader, model)
        self._resumed_step = global_step if global_step > 0 else None

    def epoch_begin(self, args: Any, state: Any, train_dataloader: Any) -> None:
        """Point the plan at this pass, past the batches a resumed run's first pass skips."""
        if self.levelled_collate is None:
            return
        epoch, accumulation = int(state.epoch or 0), args.gradient_accumulation_steps
        stream = train_dataloader is not None and not has_length(train_dataloader)
        steps_per_epoch = state.max_steps if stream else max(1, math.ceil(len(train_dataloader) / accumulation))
        skipped = 0  # batches of a resumed epoch the Trainer skips without loading them
        if self._resumed_step is not None and not args.ignore_data_skip:
            skipped = (self._resumed_step % steps_per_epoch) * accumulation
        self._resumed_step = None
        if stream:  # a stream's skipped batches are read and collated, so they count themselves
            first_step = state.global_step - skipped // accumulation
            self.levelled_collate.set_epoch(epoch, 0, first_step=first_step, accumulation=accumulation)
        else:
            self.levelled_collate.set_epoch(epoch, skipped)
            self.plan.schedule.begin_stage(epoch)
            levels, _ = self.plan.distribution(epoch)
            logger.info("ICPC epoch %d draws each batch's level from %s", epoch, levels)

    def evaluated(self, args: Any, metrics: dict[str, float] | None) -> None:
        """Tell the schedule of an evaluation during training (`adaptive` moves its floor; the next epoch draws from it)."""
        if self.levelled_collate is None or metrics is None:
            return
        icpc = self.plan.icpc
        self.plan.schedule.evaluated(args, metrics, len(drawn_levels(icpc.levels, icpc.level_weights)[0]))
