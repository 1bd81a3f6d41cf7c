"""Publishing from the Trainer's own saves: the processor, the pipeline code and a model card of what training
measured are written beside every checkpoint, before every push and at the end of training (docs/guides/hub.md)."""

from __future__ import annotations

import logging
import os
from typing import Any

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .hub import check_processor, mark_servable, staged, unclaim, write_serving_files
from .model_card import Measured
from .preflight import training_processor

logger = logging.getLogger(__name__)


def complete(model: Any, processor: Any, folder: str, repo_id: str | None, measured: Measured) -> None:
    """Write the serving files into `folder` all at once (`staged`), or leave it claiming nothing (`unclaim`)."""
    try:
        with staged(folder) as staging:
            write_serving_files(model, processor, staging, repo_id=repo_id or folder, measured=measured)
    except BaseException:
        unclaim(folder)
        raise


class Publisher:
    """Makes the folders the Trainer saves or pushes servable; `enabled=False` leaves them as the Trainer writes."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.processor: Any = None
        """The processor served with the model: the data collator's, else the Trainer's `processing_class`."""
        self.training = False

    def begin(self, model: Any, processor: Any) -> None:
        """Training starts: keep the processor, and make the model's config list the pipeline code when there is one
        (so every `save_pretrained` writes the entry)."""
        self.training = True
        if self.enabled:
            self.processor = processor
            if processor is not None:
                mark_servable(model)

    def write(self, args: Any, model: Any, folder: str, measured: Measured) -> None:
        """Processor, pipeline code and model card beside the weights the Trainer saves in `folder`, written beside
        it first (`staged`); if that fails, the Trainer's config.json there stops naming the pipeline code."""
        if not self.enabled or not args.should_save or model is None:
            return
        processor = self.processor
        if processor is None:
            check_processor(processor)  # raises: never a folder that looks servable and is not
        mark_servable(model)
        complete(model, processor, folder, args.hub_model_id, measured)

    def checkpoint_saved(self, args: Any, state: Any, model: Any, measured: Measured) -> None:
        if self.processor is not None:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            if os.path.isdir(folder):  # not with a hyperparameter search, whose runs save elsewhere
                self.write(args, model, folder, measured)

    def push_begins(
        self, args: Any, model: Any, train_dataloader: Any, processing_class: Any, measured: Measured
    ) -> None:
        """`output_dir` is about to be uploaded: complete it (a push after training finds the processor itself)."""
        if self.enabled and self.processor is None:
            self.processor = training_processor(train_dataloader, None) or processing_class
        self.write(args, model, args.output_dir, measured)
        if self.enabled and not self.training:
            logger.warning(
                "Trainer.push_to_hub() writes its own model card over README.md before uploading, with no callback "
                "event in between: the pushed repository is servable, but its card is the Trainer's. Upload the ICPC "
                "card with its results afterwards: `callback.push_model_card(trainer)`."
            )

    def end(self, args: Any, model: Any, measured: Measured) -> None:
        """Training ended: complete `output_dir`, so `trainer.save_model()` leaves a servable folder."""
        self.training = False
        if self.processor is not None:  # without one, the start of training warned that saves are not servable
            self.write(args, model, args.output_dir, measured)

    def push_model_card(self, trainer: Any, measured: Measured, commit_message: str = "ICPC model card") -> Any:
        """Upload the ICPC card as README.md to the repository `trainer.push_to_hub()` pushed to."""
        from huggingface_hub import HfApi

        repo_id = getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id
        if repo_id is None:
            raise ValueError(
                "The Trainer has no Hub repository yet: call `trainer.push_to_hub()` first, or set "
                "`TrainingArguments(hub_model_id=...)`."
            )
        processor = self.processor or trainer.processing_class
        check_processor(processor)
        folder = trainer.args.output_dir
        complete(trainer.model, processor, folder, repo_id, measured)
        return HfApi(token=trainer.args.hub_token).upload_file(
            path_or_fileobj=os.path.join(folder, "README.md"),
            path_in_repo="README.md",
            repo_id=repo_id,
            commit_message=commit_message,
            revision=trainer.args.hub_revision,
        )
