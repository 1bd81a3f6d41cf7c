"""The serving gate (serving_inputs.py) through `run_cascade` and the pipelines: argument ranges, input limits,
one-level cascades as plain forward passes, and pipelines shared between threads."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_vit

from icpc_hf import ICPCConfig, ICPCDataCollator, patch_model, run_cascade

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vit():
    return patch_model(tiny_vit(), ICPCConfig(levels=[0.5, 0.75, 1.0], cascade_levels=[0.5, 1.0]))


def images(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [{"pixel_values": torch.randn(3, 32, 32, generator=generator)} for _ in range(count)]


# ---------------------------------------------------------------- a cascade of one level is a plain forward pass
@pytest.mark.parametrize("level", [1.0, 0.5])
@pytest.mark.parametrize("combine", ["last", "mean", "level_weighted"])
def test_one_level_gives_exactly_the_plain_forward_passes_softmax(vit, level, combine):
    features, batch_size = images(10), 4
    result = run_cascade(vit, features, None, levels=[level], batch_size=batch_size, combine=combine)
    collator = ICPCDataCollator(None, vit.config.icpc, level=level, resize_on_device=False)
    with torch.inference_mode():
        plain = torch.cat(
            [
                vit(**collator(features[start : start + batch_size])).logits.float().softmax(-1)
                for start in range(0, len(features), batch_size)
            ]
        )
    assert torch.equal(result.probabilities, plain)
    assert result.used.all() and not result.answered_step.any() and result.levels == [level]
    assert torch.equal(result.spent_tokens, result.tokens) and torch.equal(result.spent_flops > 0, result.used[:, 0])
    if level == 1.0:
        assert torch.equal(result.spent_flops, result.full_flops)


def test_a_model_in_training_mode_is_run_in_eval_mode_and_given_back_as_it_was(vit):
    vit.train()
    try:
        trained = run_cascade(vit, images(4), None, levels=[1.0]).probabilities
        assert vit.training and all(module.training for module in vit.modules())
    finally:
        vit.eval()
    assert torch.equal(trained, run_cascade(vit, images(4), None, levels=[1.0]).probabilities)
