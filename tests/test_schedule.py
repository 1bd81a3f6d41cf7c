import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from icpc_hf import ICPCConfig, ICPCDataCollator, LevelPlan
from icpc_hf.drawn_level import current_batch

LEVELS = [0.25, 0.5, 0.75, 1.0]


def test_batch_levels_are_reproducible_per_seed_and_epoch_and_change_across_epochs():
    plan = LevelPlan(ICPCConfig(levels=LEVELS, seed=1, schedule="constant"))
    a = plan.epoch_levels(0, 400)
    assert a == LevelPlan(ICPCConfig(levels=LEVELS, seed=1, schedule="constant")).epoch_levels(0, 400)
    assert a != plan.epoch_levels(1, 400)
    assert a != LevelPlan(ICPCConfig(levels=LEVELS, seed=2, schedule="constant")).epoch_levels(0, 400)
    assert set(a) == set(LEVELS)


def test_weights_shape_the_draw():
    plan = LevelPlan(ICPCConfig(levels=[0.5, 1.0], level_weights=[3.0, 1.0], schedule="constant"))
    drawn = np.array(plan.epoch_levels(0, 4000))
    assert 0.7 < (drawn == 0.5).mean() < 0.8


def test_uncompressed_last_epochs_serve_full_size():
    plan = LevelPlan(ICPCConfig(levels=LEVELS, uncompressed_last_epochs=2, schedule="constant"), num_epochs=5)
    assert min(plan.epoch_levels(2, 50)) < 1.0
    assert set(plan.epoch_levels(3, 50)) == set(plan.epoch_levels(4, 50)) == {1.0}


def test_levelled_collate_sees_each_batch_level_and_evaluation_sees_none():
    plan = LevelPlan(ICPCConfig(levels=LEVELS, seed=4, schedule="constant"))
    seen = []

    def collate(indices):
        seen.append((current_batch().level, list(indices)))
        return indices

    levelled = plan.bind(collate)
    levelled.set_epoch(2)
    loader = DataLoader(list(range(37)), batch_size=4, shuffle=True, collate_fn=levelled)
    list(loader)
    assert [level for level, _ in seen] == plan.epoch_levels(2, 10)
    assert sorted(i for _, indices in seen for i in indices) == list(range(37))
    assert current_batch() is None


def record_level(features):
    """A collate function for workers: what the batch held and the level it was collated at."""
    return {"level": torch.tensor(current_batch().level), "indices": torch.tensor(features)}


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_workers_collate_each_batch_at_its_planned_level(workers):
    plan = LevelPlan(ICPCConfig(levels=LEVELS, seed=6, schedule="constant"))
    levelled = plan.bind(record_level)
    for epoch in (0, 1):
        levelled.set_epoch(epoch)
        loader = DataLoader(list(range(45)), batch_size=4, collate_fn=levelled, num_workers=workers)
        batches = list(loader)
        assert [float(b["level"]) for b in batches] == plan.epoch_levels(epoch, 12)
        assert torch.cat([b["indices"] for b in batches]).tolist() == list(range(45))


def test_a_resumed_pass_goes_on_with_the_same_levels():
    from accelerate.data_loader import SkipBatchSampler

    plan = LevelPlan(ICPCConfig(levels=LEVELS, seed=6, schedule="constant"))
    levelled = plan.bind(record_level)
    for workers in (0, 2):
        levelled.set_epoch(1, first_position=5)
        loader = DataLoader(
            list(range(45)),
            batch_sampler=SkipBatchSampler(torch.utils.data.BatchSampler(range(45), 4, False), skip_batches=5),
            collate_fn=levelled,
            num_workers=workers,
        )
        assert [float(b["level"]) for b in loader] == plan.epoch_levels(1, 12)[5:]


def test_levelled_collate_pickles_for_spawned_workers():
    levelled = LevelPlan(ICPCConfig(levels=LEVELS, seed=6, schedule="constant")).bind(record_level)
    levelled.set_epoch(3, first_position=2)
    copy = pickle.loads(pickle.dumps(levelled))
    assert copy.level_at(7) == levelled.level_at(7) and copy.epoch == 3 and copy.first_position == 2


def test_a_stream_batch_belongs_to_its_optimizer_step():
    icpc = ICPCConfig(levels=LEVELS, schedule="progressive")
    levelled = LevelPlan(icpc, num_epochs=8).bind(record_level)  # a stream: 8 optimizer steps in all
    levelled.set_epoch(0, first_step=0, accumulation=2)
    smallest = [min(levelled.plan.distribution(levelled.first_step + p // 2)[0]) for p in range(16)]
    assert smallest[0] == 0.25 and smallest[-1] == 1.0 and smallest == sorted(smallest)
    assert all(levelled.level_at(p) >= smallest[p] for p in range(16))


def test_level_plan_needs_resolved_levels():
    with pytest.raises(ValueError, match="patch_model"):
        LevelPlan(ICPCConfig())


# ---------------------------------------------------------------- schedules over the run and the training budget
from icpc_hf.training.budget import weights_for_speedup  # noqa: E402
from icpc_hf.training.plan import epoch_distribution  # noqa: E402

SIX = [3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8, 1.0]


def test_constant_schedule_is_the_same_every_epoch():
    for epoch in range(10):
        assert epoch_distribution(SIX, [1, 2, 3, 4, 5, 6], "constant", epoch, 10) == (SIX, [1, 2, 3, 4, 5, 6])


def test_progressive_schedule_raises_the_smallest_level_and_ends_on_large_levels():
    smallest = [min(epoch_distribution(SIX, None, "progressive", e, 12)[0]) for e in range(12)]
    assert smallest == sorted(smallest) and smallest[0] == SIX[0] and smallest[-1] == 1.0
    levels, weights = epoch_distribution(SIX, [6, 5, 4, 3, 2, 1], "progressive", 4, 12)
    assert levels == SIX[2:] and weights == [4, 3, 2, 1]  # weights follow their levels


def test_anchored_schedule_rises_like_progressive_but_keeps_the_cascade_levels():
    anchors = [4 / 8, 6 / 8, 1.0]
    for epoch in range(12):
        progressive, _ = epoch_distribution(SIX, None, "progressive", epoch, 12)
        anchored, _ = epoch_distribution(SIX, None, "anchored", epoch, 12, anchors=anchors)
        assert anchored == sorted(set(progressive) | set(anchors))
    assert epoch_distribution(SIX, None, "anchored", 11, 12, anchors=anchors)[0] == anchors  # the end: served levels
    levels, weights = epoch_distribution(SIX, [6, 5, 4, 3, 2, 1], "anchored", 11, 12, anchors=anchors)
    assert levels == anchors and weights == [5, 3, 1]  # weights follow their levels
    from helpers import tiny_vit

    from icpc_hf import patch_model
    from icpc_hf.patching import icpc_settings

    model = patch_model(tiny_vit(), ICPCConfig(levels=SIX[1:], cascade_levels=[0.5, 1.0], schedule="anchored"))
    plan = LevelPlan(icpc_settings(model), num_epochs=4)
    assert set(plan.epoch_levels(3, 400)) == {0.5, 7 / 8, 1.0}  # the floor at 7/8, and the cascade's 0.5


def test_bookends_schedule_draws_the_smallest_level_and_full_size_alike_in_every_epoch():
    for epoch in (0, 5, 11):
        assert epoch_distribution(SIX, None, "bookends", epoch, 12) == ([SIX[0], 1.0], None)
    assert epoch_distribution(SIX, None, "bookends", 3, None) == ([SIX[0], 1.0], None)  # no clock needed
    plan = LevelPlan(ICPCConfig(levels=SIX, schedule="bookends"), num_epochs=12)
    for epoch in (0, 11):
        drawn = np.array(plan.epoch_levels(epoch, 4000))
        assert set(drawn.tolist()) == {SIX[0], 1.0}
        assert 0.46 < (drawn == SIX[0]).mean() < 0.54  # a fair coin per batch
    assert plan.epoch_levels(0, 50) != plan.epoch_levels(1, 50)


@pytest.mark.parametrize("budget", [{"level_weights": [1, 1, 1, 1, 1, 1]}, {"target_speedup": 2.0}])
def test_bookends_schedule_refuses_weights_it_would_ignore(budget):
    with pytest.raises(ValueError, match="bookends.*drop them"):
        LevelPlan(ICPCConfig(levels=SIX, schedule="bookends", **budget))


def test_progressive_bookends_is_progressive_until_its_last_stage_then_both_ends():
    for epoch in range(10):  # 12 epochs over six levels: the last stage is epochs 10 and 11
        assert epoch_distribution(SIX, None, "progressive_bookends", epoch, 12) == epoch_distribution(
            SIX, None, "progressive", epoch, 12
        )
    for epoch in (10, 11):
        assert epoch_distribution(SIX, None, "progressive", epoch, 12) == ([1.0], None)
        assert epoch_distribution(SIX, None, "progressive_bookends", epoch, 12) == ([SIX[0], 1.0], None)
    weights = [6, 5, 4, 3, 2, 1]  # weights shape the stages before the last; its two ends are drawn alike
    assert epoch_distribution(SIX, weights, "progressive_bookends", 0, 12) == (SIX, weights)
    assert epoch_distribution(SIX, weights, "progressive_bookends", 11, 12) == ([SIX[0], 1.0], None)
    ends = LevelPlan(ICPCConfig(levels=SIX, schedule="progressive_bookends"), num_epochs=12)
    rising = LevelPlan(ICPCConfig(levels=SIX, schedule="progressive"), num_epochs=12)
    for epoch in range(10):  # batch for batch the same run as progressive until the last stage
        assert ends.epoch_levels(epoch, 200) == rising.epoch_levels(epoch, 200)
    drawn = np.array(ends.epoch_levels(11, 4000))
    assert set(drawn.tolist()) == {SIX[0], 1.0} and 0.46 < (drawn == SIX[0]).mean() < 0.54


def test_progressive_resizing_grows_one_level_per_epoch_and_ends_at_full_size():
    drawn = [epoch_distribution(SIX, None, "progressive_resizing", e, 10)[0] for e in range(10)]
    assert all(len(levels) == 1 for levels in drawn)
    sizes = [levels[0] for levels in drawn]
    assert sizes == sorted(sizes) and sizes[0] == SIX[0]
    assert sizes[-2:] == [1.0, 1.0] and sizes[7] < 1.0  # the last fifth at full size


def test_uncompressed_last_epochs_override_any_schedule():
    for schedule in ("constant", "progressive", "anchored", "bookends", "progressive_bookends", "progressive_resizing"):
        assert epoch_distribution(SIX, None, schedule, 9, 10, uncompressed_last_epochs=1) == ([1.0], None)
        assert epoch_distribution(SIX, None, schedule, 0, 10, uncompressed_last_epochs=1)[0] != [1.0]


def test_level_plan_follows_the_schedule():
    plan = LevelPlan(ICPCConfig(levels=SIX, schedule="progressive"), num_epochs=6)
    assert set(plan.epoch_levels(0, 400)) == set(SIX)
    assert set(plan.epoch_levels(5, 400)) == {1.0}


@pytest.mark.parametrize("target", [1.0, 1.3, 2.0, 3.0, 5.0])
def test_weights_for_speedup_meet_the_target(target):
    costs = [(lv * 8) ** 2 / 64 for lv in SIX]
    weights = np.asarray(weights_for_speedup(costs, target))
    assert weights.min() >= 0 and abs(weights.sum() - 1) < 1e-4
    assert abs(1.0 / float(weights @ np.asarray(costs)) - target) < 1e-3 * target
    # cheaper levels are drawn at least as often as dearer ones when the target asks for savings
    if target > 1 / np.mean(costs):
        assert (np.diff(weights) <= 1e-9).all()


def test_weights_for_speedup_are_even_when_the_even_draw_meets_the_target():
    costs = [0.25, 0.5, 1.0]
    weights = weights_for_speedup(costs, 1 / np.mean(costs))
    assert np.allclose(weights, 1 / 3, atol=1e-3)


@pytest.mark.parametrize("target,fragment", [(0.5, "at least 1"), (20.0, "smallest level costs")])
def test_weights_for_speedup_refuse_unreachable_targets(target, fragment):
    with pytest.raises(ValueError, match=fragment):
        weights_for_speedup([0.25, 0.5, 1.0], target)


def test_training_refuses_bad_budgets_and_schedules():
    with pytest.raises(ValueError, match="at least 1"):
        ICPCDataCollator(None, ICPCConfig(target_speedup=0.8))
    with pytest.raises(ValueError, match="not both"):
        ICPCDataCollator(None, ICPCConfig(levels=[0.5, 1.0], level_weights=[1, 1], target_speedup=2.0))
    with pytest.raises(ValueError, match="Unknown `schedule`"):
        ICPCDataCollator(None, ICPCConfig(schedule="cosine"))


def test_target_speedup_derives_the_weights_of_a_patched_model_where_training_begins(tmp_path):
    from helpers import tiny_vit
    from transformers import ViTForImageClassification

    from icpc_hf import patch_model
    from icpc_hf.patching import icpc_settings

    model = patch_model(tiny_vit(), ICPCConfig(target_speedup=2.5))
    assert model.config.icpc["level_weights"] is None  # serving never reads them: patch_model leaves them
    plan = LevelPlan(icpc_settings(model))
    weights = plan.icpc.level_weights
    costs = [(lv * 8) ** 2 / 64 for lv in plan.icpc.levels]  # 8 x 8 patches at full size
    assert abs(1.0 / float(np.dot(weights, costs)) - 2.5) < 0.01
    assert plan.distribution(0) == (plan.icpc.levels, weights)
    model.save_pretrained(tmp_path)
    reloaded = patch_model(ViTForImageClassification.from_pretrained(tmp_path))
    assert LevelPlan(icpc_settings(reloaded)).icpc.level_weights == weights  # the same budget, the same weights
    with pytest.raises(ValueError, match="not the target's"):  # weights of their own beside a target: refused
        LevelPlan(ICPCConfig.from_dict({**icpc_settings(reloaded).to_dict(), "level_weights": [1.0] * len(weights)}))


def test_target_speedup_beyond_the_smallest_level_names_the_fix():
    from helpers import tiny_vit

    from icpc_hf import patch_model

    icpc = ICPCConfig(target_speedup=50.0)
    patch_model(tiny_vit(), icpc)
    with pytest.raises(ValueError, match="smallest level costs"):
        ICPCDataCollator(None, icpc)


def test_progressive_schedule_rises_through_the_levels_that_are_drawn_at_all():
    levels = [0.375, 0.5, 1.0]
    for epoch in range(4):
        drawn, weights = epoch_distribution(levels, [1.0, 0.0, 0.0], "progressive", epoch, 4)
        assert drawn == [0.375] and weights == [1.0]
    assert epoch_distribution(levels, [1.0, 0.0, 2.0], "progressive", 3, 4) == ([1.0], [2.0])
    plan = LevelPlan(ICPCConfig(levels=levels, level_weights=[1.0, 0.0, 0.0]), num_epochs=4)
    assert set(plan.epoch_levels(3, 40)) == {0.375}
