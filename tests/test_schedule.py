import numpy as np
import pytest
from torch.utils.data import DataLoader

from icpc_hf import ICPCConfig, ICPCSampler
from icpc_hf.schedule import current_batch, draw_levels, plan_epoch

LEVELS = [0.25, 0.5, 0.75, 1.0]


def test_draw_is_reproducible_per_seed_and_epoch_and_changes_across_epochs():
    a = draw_levels(500, LEVELS, None, seed=1, epoch=0)
    assert np.array_equal(a, draw_levels(500, LEVELS, None, seed=1, epoch=0))
    assert not np.array_equal(a, draw_levels(500, LEVELS, None, seed=1, epoch=1))
    assert not np.array_equal(a, draw_levels(500, LEVELS, None, seed=2, epoch=0))
    assert set(np.unique(a)) == set(LEVELS)


def test_weights_shape_the_draw():
    drawn = draw_levels(4000, [0.5, 1.0], [3.0, 1.0], seed=0, epoch=0)
    assert 0.7 < (drawn == 0.5).mean() < 0.8


@pytest.mark.parametrize("num_samples,chunk", [(103, 8), (64, 16), (5, 8), (1000, 32)])
def test_plan_serves_every_sample_once_in_level_homogeneous_chunks(num_samples, chunk):
    drawn = draw_levels(num_samples, LEVELS, None, seed=0, epoch=3)
    plan = plan_epoch(drawn, chunk, seed=0, epoch=3)
    assert sorted(plan.order.tolist()) == list(range(num_samples))
    for c, level in enumerate(plan.chunk_levels):
        members = plan.order[c * chunk : (c + 1) * chunk]
        assert (plan.sample_levels[members] == level).all()
        assert level in LEVELS
    # every chunk but the last is full
    assert len(plan.chunk_levels) == -(-num_samples // chunk)


def test_most_samples_keep_their_drawn_level():
    drawn = draw_levels(1000, LEVELS, None, seed=0, epoch=0)
    plan = plan_epoch(drawn, 16, seed=0, epoch=0)
    assert (plan.sample_levels == drawn).mean() > 0.9


def test_sampler_uncompressed_last_epochs():
    icpc = ICPCConfig(levels=LEVELS, uncompressed_last_epochs=2)
    sampler = ICPCSampler(50, 8, icpc, num_epochs=5)
    assert (sampler.plan(2).chunk_levels < 1.0).any()
    assert (sampler.plan(3).chunk_levels == 1.0).all() and (sampler.plan(4).chunk_levels == 1.0).all()


def test_bound_collate_sees_the_level_of_each_batch_and_evaluation_sees_none():
    icpc = ICPCConfig(levels=LEVELS, seed=4)
    sampler = ICPCSampler(37, 4, icpc)
    sampler.set_epoch(2)
    seen = []

    def collate(indices):
        seen.append((current_batch().level, list(indices)))
        return indices

    loader = DataLoader(list(range(37)), batch_size=4, sampler=sampler, collate_fn=sampler.bind(collate))
    list(loader)
    plan = sampler.plan(2)
    assert [level for level, _ in seen] == plan.chunk_levels.tolist()
    for level, indices in seen:
        assert (plan.sample_levels[indices] == level).all()
    assert current_batch() is None


def test_workers_are_refused_with_the_fix():
    icpc = ICPCConfig(levels=LEVELS)
    sampler = ICPCSampler(8, 4, icpc)
    loader = DataLoader(list(range(8)), batch_size=4, sampler=sampler, collate_fn=sampler.bind(lambda x: x),
                        num_workers=1)
    with pytest.raises(Exception, match="dataloader_num_workers=0"):
        list(loader)


def test_sampler_needs_resolved_levels():
    with pytest.raises(ValueError, match="patch_model"):
        ICPCSampler(10, 2, ICPCConfig())


def test_lengths_group_similar_samples_without_losing_any():
    drawn = np.full(400, 1.0)
    lengths = np.random.default_rng(0).integers(5, 200, 400)
    plan = plan_epoch(drawn, 8, seed=0, epoch=0, lengths=lengths)
    assert sorted(plan.order.tolist()) == list(range(400))
    grouped = [np.ptp(lengths[plan.order[i:i + 8]]) for i in range(0, 400, 8)]
    plain = plan_epoch(drawn, 8, seed=0, epoch=0)
    random_spread = [np.ptp(lengths[plain.order[i:i + 8]]) for i in range(0, 400, 8)]
    assert np.mean(grouped) < np.mean(random_spread) / 3


def test_trainer_groups_tokenized_samples_by_length():
    from icpc_hf.callback import sample_lengths

    class Loader:
        dataset = [{"input_ids": [1] * n} for n in (3, 7, 5)]

    assert sample_lengths(Loader()) == [3, 7, 5]
    Loader.dataset = [{"pixel_values": 0}]
    assert sample_lengths(Loader()) is None


# ---------------------------------------------------------------- schedules over the run and the training budget
from icpc_hf.schedule import epoch_distribution, weights_for_speedup  # noqa: E402

SIX = [3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8, 1.0]


def test_constant_schedule_is_the_same_every_epoch():
    for epoch in range(10):
        assert epoch_distribution(SIX, [1, 2, 3, 4, 5, 6], "constant", epoch, 10) == (SIX, [1, 2, 3, 4, 5, 6])


def test_progressive_schedule_raises_the_smallest_level_and_ends_on_large_levels():
    smallest = [min(epoch_distribution(SIX, None, "progressive", e, 12)[0]) for e in range(12)]
    assert smallest == sorted(smallest) and smallest[0] == SIX[0] and smallest[-1] == 1.0
    levels, weights = epoch_distribution(SIX, [6, 5, 4, 3, 2, 1], "progressive", 4, 12)
    assert levels == SIX[2:] and weights == [4, 3, 2, 1]  # weights follow their levels


def test_progressive_resizing_grows_one_level_per_epoch_and_ends_at_full_size():
    drawn = [epoch_distribution(SIX, None, "progressive_resizing", e, 10)[0] for e in range(10)]
    assert all(len(levels) == 1 for levels in drawn)
    sizes = [levels[0] for levels in drawn]
    assert sizes == sorted(sizes) and sizes[0] == SIX[0]
    assert sizes[-2:] == [1.0, 1.0] and sizes[7] < 1.0  # the last fifth at full size


def test_uncompressed_last_epochs_override_any_schedule():
    for schedule in ("constant", "progressive", "progressive_resizing"):
        assert epoch_distribution(SIX, None, schedule, 9, 10, uncompressed_last_epochs=1) == ([1.0], None)
        assert epoch_distribution(SIX, None, schedule, 0, 10, uncompressed_last_epochs=1)[0] != [1.0]


def test_sampler_follows_the_schedule():
    icpc = ICPCConfig(levels=SIX, schedule="progressive")
    sampler = ICPCSampler(400, 8, icpc, num_epochs=6)
    assert set(sampler.levels_for_epoch(0)) == set(SIX)
    assert set(sampler.levels_for_epoch(5)) == {1.0}


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


def test_config_refuses_bad_budgets_and_schedules():
    with pytest.raises(ValueError, match="at least 1"):
        ICPCConfig(target_speedup=0.8)
    with pytest.raises(ValueError, match="not both"):
        ICPCConfig(levels=[0.5, 1.0], level_weights=[1, 1], target_speedup=2.0)
    with pytest.raises(ValueError, match="Unknown `schedule`"):
        ICPCConfig(schedule="cosine")


def test_target_speedup_derives_the_weights_of_a_patched_model_and_saves_them(tmp_path):
    from helpers import tiny_vit
    from transformers import ViTForImageClassification

    from icpc_hf import patch_model

    model = patch_model(tiny_vit(), ICPCConfig(target_speedup=2.5))
    stored = model.config.icpc
    costs = [(lv * 8) ** 2 / 64 for lv in stored["levels"]]  # 8 x 8 patches at full size
    assert abs(1.0 / float(np.dot(stored["level_weights"], costs)) - 2.5) < 0.01
    model.save_pretrained(tmp_path)
    reloaded = patch_model(ViTForImageClassification.from_pretrained(tmp_path))
    assert reloaded.config.icpc["level_weights"] == stored["level_weights"]


def test_target_speedup_beyond_the_smallest_level_names_the_fix():
    from helpers import tiny_vit

    from icpc_hf import patch_model

    with pytest.raises(ValueError, match="smallest level costs"):
        patch_model(tiny_vit(), ICPCConfig(target_speedup=50.0))


def test_progressive_schedule_rises_through_the_levels_that_are_drawn_at_all():
    levels = [0.375, 0.5, 1.0]
    for epoch in range(4):
        drawn, weights = epoch_distribution(levels, [1.0, 0.0, 0.0], "progressive", epoch, 4)
        assert drawn == [0.375] and weights == [1.0]
    assert epoch_distribution(levels, [1.0, 0.0, 2.0], "progressive", 3, 4) == ([1.0], [2.0])
    sampler = ICPCSampler(40, 8, ICPCConfig(levels=levels, level_weights=[1.0, 0.0, 0.0]), num_epochs=4)
    assert set(sampler.levels_for_epoch(3)) == {0.375}
