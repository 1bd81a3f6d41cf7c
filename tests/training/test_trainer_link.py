"""TrainerLink, without training: the callback goes first, finds the Trainer calling it, and logs as Trainer.log."""

import gc
import logging
from types import SimpleNamespace

from transformers import Trainer, TrainerCallback

from icpc_hf.training.trainer_link import TrainerLink


class Recorder(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append((dict(logs), kwargs))


class FakeTrainer(Trainer):
    """A Trainer in type only (no model, no arguments): what the link reads of one."""

    def __init__(self, callbacks):
        self.callback_handler = SimpleNamespace(callbacks=callbacks)

    def fire(self, link, callback):  # the Trainer calls its callbacks from its own methods
        link.find(callback)


def test_attach_puts_the_callback_first_once_and_keeps_the_trainer_weakly():
    first, ours, last = Recorder(), Recorder(), Recorder()
    trainer = FakeTrainer([first, ours, last])
    link = TrainerLink()
    link.attach(ours, trainer)
    link.attach(ours, trainer)
    assert trainer.callback_handler.callbacks == [ours, first, last]
    assert link.callbacks is trainer.callback_handler.callbacks
    assert link.trainer is trainer
    del trainer
    gc.collect()
    assert link.trainer is None


def test_find_attaches_to_the_trainer_on_the_call_stack_that_holds_the_callback():
    ours, other = Recorder(), Recorder()
    link = TrainerLink()
    FakeTrainer([other]).fire(link, ours)  # a Trainer without the callback is not the one
    assert link.trainer is None and link.callbacks is None
    holder = FakeTrainer([other, ours])
    holder.fire(link, ours)
    assert link.trainer is holder and holder.callback_handler.callbacks[0] is ours


def test_figures_join_the_log_and_its_history_entry_and_a_late_callback_is_told_once(caplog):
    link = TrainerLink()
    state = SimpleNamespace(global_step=4, log_history=[{"loss": 1.0, "step": 4}])
    args = SimpleNamespace(report_to=["tensorboard"])
    logs = {"loss": 1.0}
    with caplog.at_level(logging.WARNING):
        link.add_to_log(args, state, logs, {"icpc/token_ratio": 0.5})
        link.add_to_log(args, state, {"loss": 0.9}, {"icpc/token_ratio": 0.6})
    assert logs == {"loss": 1.0, "icpc/token_ratio": 0.5}
    assert state.log_history[-1] == {"loss": 1.0, "step": 4, "icpc/token_ratio": 0.6}
    assert len([r for r in caplog.records if "callback.attach(trainer)" in r.getMessage()]) == 1
    state.global_step = 6  # the history's last entry is another step's: left as it is
    link.add_to_log(args, state, {"loss": 0.8}, {"icpc/token_ratio": 0.7})
    assert state.log_history[-1]["icpc/token_ratio"] == 0.6


def test_no_warning_when_attached_or_not_reporting(caplog):
    state = SimpleNamespace(global_step=1, log_history=[])
    attached = TrainerLink()
    attached.attach(Recorder(), FakeTrainer([]))
    with caplog.at_level(logging.WARNING):
        attached.add_to_log(SimpleNamespace(report_to=["wandb"]), state, {}, {"icpc/token_ratio": 1.0})
        TrainerLink().add_to_log(SimpleNamespace(report_to="none"), state, {}, {"icpc/token_ratio": 1.0})
    assert not caplog.records


def test_log_writes_the_history_and_calls_every_other_callback():
    ours, other = Recorder(), Recorder()
    link = TrainerLink()
    state = SimpleNamespace(global_step=8, epoch=2.0, log_history=[])
    link.log(ours, None, state, None, {"icpc/calibrated_cost": 0.5})  # not attached: the history only
    assert state.log_history == [{"icpc/calibrated_cost": 0.5, "epoch": 2.0, "step": 8}] and not other.logs
    link.attach(ours, FakeTrainer([other]))
    link.log(ours, None, state, None, {"icpc/calibrated_cost": 0.4}, model="m")
    assert other.logs == [({"icpc/calibrated_cost": 0.4}, {"model": "m"})] and not ours.logs
    assert len(state.log_history) == 2
