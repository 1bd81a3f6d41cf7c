"""RunLevels, without a Trainer: the schedule a run records and checks, the plan it installs, the resume skip."""

from types import SimpleNamespace

import pytest
import torch
from helpers import tiny_vit
from torch.utils.data import DataLoader, IterableDataset

from icpc_hf import ICPCConfig, ICPCDataCollator, LevelledCollate, patch_model
from icpc_hf.training.levels import RunLevels, has_length, install_levels, plan_record


def samples(count=40):
    return [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(count)]


class Stream(IterableDataset):
    def __iter__(self):
        return iter(samples(8))


def state(global_step=0, epochs=2, max_steps=20, stored=None):
    return SimpleNamespace(
        global_step=global_step,
        num_train_epochs=epochs,
        max_steps=max_steps,
        epoch=0,
        stateful_callbacks={"ICPCCallback": stored} if stored is not None else {},
    )


def args(accumulation=1, ignore_data_skip=False):
    return SimpleNamespace(gradient_accumulation_steps=accumulation, ignore_data_skip=ignore_data_skip)


def setup(icpc=None, count=40, batch_size=4, **loader_kwargs):
    icpc = icpc or ICPCConfig(levels=[0.5, 1.0], seed=5)
    model = patch_model(tiny_vit(), icpc)
    loader = DataLoader(samples(count), batch_size=batch_size, collate_fn=ICPCDataCollator(None, icpc), **loader_kwargs)
    return icpc, model, loader


def test_schedule_records_steps_only_for_streams_and_the_schedule_only_when_it_moves():
    icpc = ICPCConfig(levels=[0.5, 1.0], seed=5, schedule="constant")
    assert "num_steps" not in plan_record(icpc, 3) and "schedule" not in plan_record(icpc, 3)
    assert plan_record(icpc, None, 12)["num_steps"] == 12
    assert plan_record(ICPCConfig(levels=[0.5, 1.0], schedule="progressive"), 3)["schedule"] == "progressive"


def test_begin_takes_the_plan_record_the_epochs_or_of_a_streams_steps():
    icpc, _, loader = setup()
    run = RunLevels()
    run.begin(icpc, state(epochs=2.5), loader, "ICPCCallback")
    assert run.record == plan_record(icpc, 3) and not run.stream
    stream = DataLoader(Stream(), batch_size=4)
    assert not has_length(stream)
    run.begin(icpc, state(max_steps=12), stream, "ICPCCallback")
    assert run.record == plan_record(icpc, None, 12) and run.stream


def test_a_resumed_run_with_other_settings_is_refused_and_a_new_run_is_not():
    icpc, _, loader = setup()
    saved = {"args": {}, "attributes": {"plan_record": plan_record(ICPCConfig(levels=[0.75, 1.0], seed=5), 2)}}
    with pytest.raises(ValueError, match="differ from the checkpoint's \\(levels\\)"):
        RunLevels().begin(icpc, state(global_step=4, stored=saved), loader, "ICPCCallback")
    RunLevels().begin(icpc, state(global_step=0, stored=saved), loader, "ICPCCallback")  # a new run: no check
    same = {"args": {}, "attributes": {"plan_record": plan_record(icpc, 2)}}
    RunLevels().begin(icpc, state(global_step=4, stored=same), loader, "ICPCCallback")


def test_a_checkpoint_of_the_previous_release_resumes_from_its_own_keys():
    """It kept the plan's record under `schedule` and the schedule's state under `adaptive`."""
    icpc, _, loader = setup(ICPCConfig(levels=[0.5, 0.75, 1.0], seed=5, schedule="adaptive"))
    floor = {"floor": 2, "best": 0.5, "epoch_floors": {"0": 0, "1": 1}}
    old = {"args": {}, "attributes": {"schedule": plan_record(icpc, 2), "adaptive": floor}}
    run = RunLevels()
    run.begin(icpc, state(global_step=4, stored=old), loader, "ICPCCallback")
    assert run.plan.schedule.state_dict() == {"floor": 2, "best": 0.5, "epoch_floors": {0: 0, 1: 1}}
    changed = {"args": {}, "attributes": {"schedule": plan_record(ICPCConfig(levels=[0.75, 1.0], seed=5), 2)}}
    with pytest.raises(ValueError, match="differ from the checkpoint's"):
        RunLevels().begin(icpc, state(global_step=4, stored=changed), loader, "ICPCCallback")


def test_the_callbacks_names_of_the_previous_release_still_work():
    from icpc_hf import ICPCCallback

    callback = ICPCCallback(calibrate=False, publish=False)
    callback.schedule = {"levels": [0.5, 1.0]}  # as the Trainer restores a checkpoint of the previous release: quiet
    assert callback.plan_record == {"levels": [0.5, 1.0]}
    with pytest.warns(FutureWarning, match="ICPCCallback.schedule is now ICPCCallback.plan_record"):
        assert callback.schedule == {"levels": [0.5, 1.0]}
    with pytest.warns(FutureWarning, match="ICPCCallback.levels is now ICPCCallback.levelled_collate"):
        assert callback.levels is None
    with pytest.warns(FutureWarning, match="ICPCCallback.adaptive is now ICPCCallback.schedule_state"):
        assert callback.adaptive is None
    assert callback.state()["attributes"] == {"plan_record": {"levels": [0.5, 1.0]}}


def test_the_same_object_trained_before_checks_its_own_schedule_when_the_checkpoint_has_none():
    icpc, _, loader = setup()
    run = RunLevels()
    run.begin(icpc, state(), loader, "ICPCCallback")
    with pytest.raises(ValueError, match="num_epochs"):
        run.begin(icpc, state(global_step=4, epochs=3), loader, "ICPCCallback")


def test_begin_refuses_a_missing_loader_and_epoch_counts_on_a_stream():
    icpc = ICPCConfig(levels=[0.5, 1.0], uncompressed_last_epochs=1)
    with pytest.raises(ValueError, match="train dataloader"):
        RunLevels().begin(icpc, state(), None, "ICPCCallback")
    with pytest.raises(ValueError, match="uncompressed_last_epochs=1.*set it to 0"):
        RunLevels().begin(icpc, state(), DataLoader(Stream(), batch_size=4), "ICPCCallback")


def test_install_puts_the_plan_on_the_loader_once_and_refuses_persistent_workers():
    icpc, model, loader = setup()
    collator = loader.collate_fn
    run = RunLevels()
    run.begin(icpc, state(), loader, "ICPCCallback")
    run.install(model, icpc, loader, None, global_step=0)
    assert isinstance(loader.collate_fn, LevelledCollate) and loader.collate_fn is run.levelled_collate
    assert run.levelled_collate.collate_fn is collator and run.levelled_collate.plan.num_stages == 2
    again = install_levels(loader, icpc, 2)  # a second train() wraps the user's collate, not the plan
    assert again.collate_fn is collator
    assert collator.model_device == "cpu"  # the collators are told where the model is
    _, _, persistent = setup(num_workers=1, persistent_workers=True)
    with pytest.raises(ValueError, match="dataloader_persistent_workers=False"):
        install_levels(persistent, icpc, 2)


@pytest.mark.parametrize("accumulation, step, ignore, skipped", [(1, 12, False, 2), (2, 7, False, 4), (2, 7, True, 0)])
def test_a_resumed_epoch_starts_past_the_batches_the_trainer_skips(accumulation, step, ignore, skipped):
    icpc, model, loader = setup()  # 10 batches: 10 // accumulation steps per epoch
    run = RunLevels()
    run.begin(icpc, state(global_step=step), loader, "ICPCCallback")
    run.install(model, icpc, loader, None, global_step=step)
    resumed = SimpleNamespace(epoch=1.2, global_step=step, max_steps=20)
    run.epoch_begin(args(accumulation, ignore), resumed, loader)
    assert (run.levelled_collate.epoch, run.levelled_collate.first_position, run.levelled_collate.first_step) == (
        1,
        skipped,
        None,
    )
    run.epoch_begin(args(accumulation, ignore), SimpleNamespace(epoch=2, global_step=20, max_steps=20), loader)
    assert (run.levelled_collate.epoch, run.levelled_collate.first_position) == (2, 0)  # only the first pass skips


def test_a_resumed_stream_goes_on_from_its_optimizer_step():
    icpc, model, _ = setup()
    stream = DataLoader(Stream(), batch_size=4, collate_fn=ICPCDataCollator(None, icpc))
    run = RunLevels()
    run.begin(icpc, state(global_step=7, max_steps=12), stream, "ICPCCallback")
    run.install(model, icpc, stream, None, global_step=7)
    run.epoch_begin(args(2), SimpleNamespace(epoch=0, global_step=7, max_steps=12), stream)
    assert (
        run.levelled_collate.first_position,
        run.levelled_collate.first_step,
        run.levelled_collate.accumulation,
    ) == (0, 0, 2)
    run.epoch_begin(args(2), SimpleNamespace(epoch=1, global_step=9, max_steps=12), stream)
    assert run.levelled_collate.first_step == 9


def test_an_epoch_before_the_plan_is_installed_is_left_alone():
    run = RunLevels()
    run.epoch_begin(args(), SimpleNamespace(epoch=0, global_step=0, max_steps=1), None)  # no loader needed
    assert run.levelled_collate is None


class DataLoaderDispatcher:
    """Accelerate's batch dispatching, by name: one batch per process is concatenated into each step's batch."""

    def __init__(self, loader, processes, split_batches=False):
        self.base_dataloader, self.split_batches = loader, split_batches
        self.state = SimpleNamespace(num_processes=processes)


def test_dispatched_batches_of_one_step_share_a_level():
    icpc, _, loader = setup()
    assert install_levels(DataLoaderDispatcher(loader, 4), icpc, 2).group == 4
    assert install_levels(DataLoaderDispatcher(loader, 4, split_batches=True), icpc, 2).group == 1
