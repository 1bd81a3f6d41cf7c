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
