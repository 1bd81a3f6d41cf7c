"""ICPCCallback: per-epoch level draws inside a plain Trainer, and what compression saved, in Trainer's logs."""

from __future__ import annotations

import gc
import logging
import math
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from .costs import encoder_flops
from .patching import base_model_of, icpc_settings
from .schedule import BatchContext, ICPCSampler, LevelledCollate

logger = logging.getLogger(__name__)


def sample_lengths(dataloader: Any) -> list[int] | None:
    """Tokens per sample of a tokenized dataset (`input_ids`), to group batches by length; None otherwise."""
    dataset = dataloader.dataset
    column_names = getattr(dataset, "column_names", None)
    if column_names is not None:  # a datasets.Dataset: read one column, not every row
        return [len(ids) for ids in dataset["input_ids"]] if "input_ids" in column_names else None
    try:
        first = dataset[0]
    except Exception:
        return None
    if not isinstance(first, dict) or "input_ids" not in first:
        return None
    return [len(dataset[i]["input_ids"]) for i in range(len(dataset))]


def install_sampler(dataloader: Any, icpc: Any, num_epochs: int | None) -> ICPCSampler:
    """Put an ICPCSampler into a (Trainer- or Accelerate-prepared) train DataLoader, in place.

    The DataLoader keeps its batch size; the sampler only reorders indices so that every batch of every rank
    holds one level, and the collate function learns each batch's level from it.
    """
    if getattr(dataloader, "num_workers", 0):
        raise ValueError(
            "ICPC batches are collated in the main process: set `dataloader_num_workers=0` in TrainingArguments "
            "(decode inputs in `datasets.map` or in the dataset instead)."
        )
    outer = dataloader.batch_sampler
    inner = getattr(outer, "batch_sampler", outer)  # accelerate's BatchSamplerShard wraps the real one
    if not hasattr(inner, "sampler") or not hasattr(inner, "batch_size"):
        raise ValueError(
            f"Cannot install ICPC level grouping into a DataLoader whose batch sampler is "
            f"{type(inner).__name__}: use a map-style dataset with a batch size (no custom batch_sampler)."
        )
    replicas = 1
    if inner is not outer and not getattr(outer, "split_batches", False):
        replicas = getattr(outer, "num_processes", 1)
    existing = inner.sampler
    sampler = ICPCSampler(
        len(existing), inner.batch_size * replicas, icpc, num_epochs=num_epochs, lengths=sample_lengths(dataloader)
    )
    sampler.set_epoch(getattr(existing, "epoch", 0))
    inner.sampler = sampler
    loader = getattr(dataloader, "base_dataloader", dataloader)  # accelerate's adapters forward reads only
    collate = loader.collate_fn
    if isinstance(collate, LevelledCollate):
        collate = collate.collate_fn
    loader.collate_fn = sampler.bind(collate)
    return sampler


def schedule_of(icpc: Any, num_epochs: int | None) -> dict[str, Any]:
    """What determines the level plan of every epoch: a resumed run must find the same."""
    return {
        "levels": list(icpc.levels), "level_weights": icpc.level_weights, "seed": icpc.seed,
        "uncompressed_last_epochs": icpc.uncompressed_last_epochs, "num_epochs": num_epochs,
    }


class ICPCCallback(TrainerCallback, ExportableState):
    """Draw each epoch's compression levels and log what they saved.

    Logged with every training log (so TensorBoard, W&B and the console see them): `icpc/tokens_per_sample`,
    `icpc/token_ratio` (compressed over uncompressed tokens) and `icpc/flops_saved` (the estimated share of
    encoder FLOPs saved), over the batches since the previous log.

    The level plan is a pure function of the settings and the epoch, and Trainer skips the batches already
    trained when resuming, so `train(resume_from_checkpoint=...)` continues the same schedule; the settings that
    determine it are saved in the checkpoint's trainer state, and resuming with different ones raises.
    """

    def __init__(self) -> None:
        self.schedule: dict[str, Any] | None = None
        self.sampler: ICPCSampler | None = None
        self._model_config = None
        self.train_totals = {"samples": 0, "tokens": 0, "full_tokens": 0, "flops": 0.0, "full_flops": 0.0}
        """Everything trained so far, for reports: samples, tokens and estimated FLOPs, compressed and full."""
        self._totals_at_last_log = dict(self.train_totals)

    def on_init_end(self, args, state, control, **kwargs):
        # Trainer calls reporting callbacks first; logs only reach them if this callback adds its figures before.
        for holder in gc.get_referrers(self):
            if (
                isinstance(holder, list)
                and all(isinstance(c, TrainerCallback) for c in holder)
                and any(type(c).__name__ == "DefaultFlowCallback" for c in holder)
            ):
                holder.remove(self)
                holder.insert(0, self)
                break

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        icpc = icpc_settings(model)
        self._model_config = base_model_of(model).config
        if train_dataloader is None:
            raise ValueError("ICPCCallback needs the Trainer's train dataloader; it was not given one.")
        epochs = math.ceil(state.num_train_epochs) if state.num_train_epochs else None
        schedule = schedule_of(icpc, epochs)
        stored = (state.stateful_callbacks or {}).get(type(self).__name__)
        saved = stored.get("attributes", {}).get("schedule") if isinstance(stored, dict) else self.schedule
        if saved is not None and state.global_step > 0 and saved != schedule:
            changed = sorted(k for k in schedule if saved.get(k) != schedule[k])
            raise ValueError(
                f"Resuming with ICPC settings that differ from the checkpoint's ({', '.join(changed)}): the run would "
                f"not continue its compression schedule. Restore the settings {saved} or start a new run."
            )
        self.schedule = schedule
        self.sampler = install_sampler(train_dataloader, icpc, epochs)
        getattr(train_dataloader, "base_dataloader", train_dataloader).collate_fn.on_batch = self._record

    def state(self) -> dict[str, Any]:
        return {"args": {}, "attributes": {"schedule": self.schedule}}

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.sampler is not None:
            epoch = int(state.epoch or 0)
            levels = self.sampler.levels_for_epoch(epoch)
            logger.info("ICPC epoch %d: mean level %.3f over %d samples", epoch, float(levels.mean()), len(levels))

    def _record(self, context: BatchContext) -> None:
        if self._model_config is None or not context.samples:
            return
        totals = self.train_totals
        totals["samples"] += context.samples
        totals["tokens"] += context.tokens
        totals["full_tokens"] += context.full_tokens
        for key, tokens in (("flops", context.tokens), ("full_flops", context.full_tokens)):
            totals[key] += float(encoder_flops(tokens / context.samples, self._model_config)) * context.samples

    def on_log(self, args, state, control, logs=None, **kwargs):
        since = {k: v - self._totals_at_last_log[k] for k, v in self.train_totals.items()}
        if logs is None or since["samples"] == 0 or "loss" not in logs:
            return
        logs["icpc/tokens_per_sample"] = since["tokens"] / since["samples"]
        logs["icpc/token_ratio"] = since["tokens"] / max(1, since["full_tokens"])
        if since["full_flops"] > 0:
            logs["icpc/flops_saved"] = 1.0 - since["flops"] / since["full_flops"]
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update({k: v for k, v in logs.items() if k.startswith("icpc/")})
        self._totals_at_last_log = dict(self.train_totals)
