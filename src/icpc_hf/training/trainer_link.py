"""The Trainer behind a callback's events, which the events do not carry: found on the call stack or attached by
hand, so that the callback can go first among the Trainer's callbacks, read its evaluation set, and log."""

from __future__ import annotations

import inspect
import logging
import weakref
from typing import Any

logger = logging.getLogger(__name__)


class TrainerLink:
    """A weak link from a callback to the Trainer that calls it, and to that Trainer's list of callbacks."""

    def __init__(self) -> None:
        self._trainer_ref: weakref.ReferenceType | None = None
        self.callbacks: list | None = None
        """The Trainer's callbacks once attached (this callback first); None before."""
        self._warned_order = False

    @property
    def trainer(self) -> Any:
        return self._trainer_ref() if self._trainer_ref is not None else None

    def attach(self, callback: Any, trainer: Any) -> None:
        """Put `callback` first in `trainer`'s callbacks, ahead of the reporting ones, and keep the trainer."""
        callbacks = trainer.callback_handler.callbacks
        if callback in callbacks:
            callbacks.remove(callback)
        callbacks.insert(0, callback)
        self.callbacks = callbacks
        self._trainer_ref = weakref.ref(trainer)

    def find(self, callback: Any) -> None:
        """Attach to the Trainer that is calling `callback`, found on the call stack (once).

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
                    c is callback for c in getattr(getattr(owner, "callback_handler", None), "callbacks", ())
                ):
                    self.attach(callback, owner)
                    return
                frame = frame.f_back
        finally:
            del frame

    def add_to_log(self, args: Any, state: Any, logs: dict[str, Any], figures: dict[str, Any]) -> None:
        """Add `figures` to the log event under way, and to its `state.log_history` entry (which the reporting
        callbacks that ran before this one, when it was not attached, still get into the Trainer's history)."""
        if not self._warned_order and self.callbacks is None and args.report_to not in ([], ["none"], "none", None):
            logger.warning(
                "The reporting callbacks (report_to=%s) ran before ICPCCallback, so they miss its icpc/ figures (the "
                "Trainer puts its own callbacks first; the figures still reach `trainer.state.log_history`). Call "
                "`callback.attach(trainer)` after creating the Trainer to put ICPCCallback first.",
                args.report_to,
            )
            self._warned_order = True
        logs.update(figures)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update({k: v for k, v in logs.items() if k.startswith("icpc/")})

    def log(self, callback: Any, args: Any, state: Any, control: Any, logs: dict[str, Any], **kwargs: Any) -> None:
        """What `Trainer.log` does, from a callback: into `state.log_history`, then to every other callback's on_log
        (those the Trainer has, once attached)."""
        state.log_history.append({**logs, "epoch": state.epoch, "step": state.global_step})
        for other in self.callbacks or []:
            if other is not callback:
                other.on_log(args, state, control, logs=logs, **kwargs)
