"""In-place self-distillation of the smallest level (`ICPCConfig(distill_smallest=True)`).

A schedule that ends on large levels leaves the model poor at its smallest one, the level a cascade answers with
first. Here every training step whose level is larger also runs the same batch at the smallest level and adds the
divergence of its prediction from the step's own (detached) prediction to the loss: the smallest level learns what
the model answers at the larger one, while the step's level keeps training on the labels as it did. Slimmable
networks and LengthDrop train their smallest sub-network this way. No weight: the two losses are added.

A forward hook on the model the Trainer trains, between `start` and `stop` (ICPCCallback's training), so the patched
embeddings and every forward outside training are untouched.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..modality import GRID_KEY, GridModality, grid_of_marker
from ..patching import base_model_of
from ..registry import registration_for

DISTILLING = "_icpc_distilling"
"""Set on the model while its smallest-level pass runs: the pass is not a new sample (accounting.py)."""


def divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) over the classes, mean over the batch; the teacher's side carries no gradient."""
    return F.kl_div(
        F.log_softmax(student_logits.float(), dim=-1),
        F.log_softmax(teacher_logits.detach().float(), dim=-1),
        log_target=True,
        reduction="batchmean",
    )


def check_distillable(model: nn.Module, icpc: Any) -> GridModality:
    """The modality the smallest level is resampled in, or a ValueError naming why this model cannot distil it."""
    modality = registration_for(icpc.model_type).modality
    if not isinstance(modality, GridModality):
        raise ValueError(
            f"`distill_smallest=True` resamples each batch to the smallest level inside the training step, which "
            f"image, video and audio inputs allow; {modality.name} levels are pruned in the collator. Drop "
            "`distill_smallest` for this model."
        )
    config = base_model_of(model).config
    problem = getattr(config, "problem_type", None)
    if problem not in (None, "single_label_classification") or getattr(config, "num_labels", 2) < 2:
        raise ValueError(
            f"`distill_smallest=True` matches class distributions (softmax), but this model's problem type is "
            f"{problem or 'regression'!r}: use it with single-label classification, or drop it."
        )
    return modality


class SmallestLevelDistillation:
    """Adds the smallest level's pass to each training step, while started."""

    def __init__(self) -> None:
        self._hook = None

    def start(self, model: nn.Module, icpc: Any) -> None:
        self.stop()
        if not icpc.distill_smallest:
            return
        modality = check_distillable(model, icpc)
        smallest = tuple(modality.grid(min(icpc.levels), icpc))
        model_name = type(model).__name__

        def distill(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
            if not module.training or not torch.is_grad_enabled() or getattr(module, DISTILLING, False):
                return None
            loss = getattr(output, "loss", None) if not isinstance(output, tuple) else None
            if loss is None:
                if "labels" in kwargs and isinstance(output, tuple):
                    raise ValueError(
                        f"`distill_smallest=True` reads the loss and logits of {model_name}'s output by name: "
                        "leave `return_dict` at True."
                    )
                return None
            if args or modality.input_key not in kwargs:
                raise ValueError(
                    f"`distill_smallest=True` needs the batch's `{modality.input_key}` as a keyword argument: call "
                    "the model as `model(**batch)`, as the Trainer does."
                )
            marker = kwargs.get(GRID_KEY)
            if marker is not None and grid_of_marker(marker) == smallest:
                return None
            small = {k: v for k, v in kwargs.items() if k not in ("labels", GRID_KEY)}
            before = small[modality.input_key].shape
            modality.compress(small, smallest, icpc)
            if small[modality.input_key].shape == before and marker is None:
                return None  # the step's own level is the smallest
            setattr(module, DISTILLING, True)
            try:
                student = module(**small)
            finally:
                setattr(module, DISTILLING, False)
            output.loss = loss + divergence(student.logits, output.logits)
            return output

        self._hook = model.register_forward_hook(distill, with_kwargs=True)

    def stop(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
