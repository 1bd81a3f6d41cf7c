"""Test-time augmentation across compression levels, within a compute budget."""

import numpy as np
import pytest
import torch
from helpers import tiny_image_processor, tiny_vit
from PIL import Image
from transformers import pipeline

from icpc_hf import ICPCConfig, encoder_flops, patch_model, run_cascade

LEVELS = [0.5, 0.75, 1.0]


@pytest.fixture
def model():
    return patch_model(tiny_vit(), ICPCConfig(levels=LEVELS, cascade_levels=LEVELS))


def samples(count=5):
    return [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(count)]


def level_flops(model, tokens):
    return float(encoder_flops(tokens, model.config))


def test_budgeted_tta_takes_the_cheapest_levels_that_fit(model):
    data = samples()
    full = level_flops(model, 65)
    budget = (level_flops(model, 17) + level_flops(model, 37)) / full + 1e-6  # exactly the two cheapest
    result = run_cascade(model, data, None, thresholds=1.0, combine="mean", budget=budget)
    assert all(result.levels_used(i) == [0.5, 0.75] for i in range(len(data)))
    assert torch.all(result.spent_flops <= budget * result.full_flops)
    singles = [run_cascade(model, data, None, levels=[lv]).probabilities for lv in (0.5, 0.75)]
    assert torch.allclose(result.probabilities, (singles[0] + singles[1]) / 2, atol=1e-5)


def test_level_weighted_combination(model):
    data = samples(3)
    result = run_cascade(model, data, None, thresholds=1.0, combine="level_weighted")
    singles = [run_cascade(model, data, None, levels=[lv]).probabilities for lv in LEVELS]
    expected = sum(lv * p for lv, p in zip(LEVELS, singles)) / sum(LEVELS)
    assert torch.allclose(result.probabilities, expected, atol=1e-5)


def test_budget_in_tokens_and_flops(model):
    data = samples(2)
    by_tokens = run_cascade(model, data, None, thresholds=1.0, combine="mean", budget=17 + 37, budget_unit="tokens")
    assert by_tokens.spent_tokens.tolist() == [54, 54]
    flops = level_flops(model, 17)
    by_flops = run_cascade(
        model, data, None, thresholds=1.0, combine="mean", budget=flops * 1.0001, budget_unit="flops"
    )
    assert by_flops.levels_used(0) == [0.5]


def test_confident_samples_stop_early_unsure_ones_augment(model):
    data = samples(6)
    first = run_cascade(model, data, None, levels=[0.5]).probabilities.max(-1).values
    middle = float(first.median())
    result = run_cascade(model, data, None, thresholds=middle, combine="mean", budget=3.0)
    for i, confidence in enumerate(first.tolist()):
        if confidence >= middle:
            assert result.levels_used(i) == [0.5]
        else:
            assert result.levels_used(i)[:2] == [0.5, 0.75]


def test_bad_budgets_and_levels_raise(model):
    data = samples(2)
    with pytest.raises(ValueError, match="smaller than the cheapest"):
        run_cascade(model, data, None, combine="mean", budget=0.01)
    with pytest.raises(ValueError, match="empty list"):
        run_cascade(model, data, None, levels=[])
    with pytest.raises(ValueError, match="budget unit"):
        run_cascade(model, data, None, budget=1.0, budget_unit="seconds")
    with pytest.raises(ValueError, match="combine"):
        run_cascade(model, data, None, combine="max")


def test_pipeline_reports_levels_used_and_cost(model):
    classifier = pipeline("icpc-image-classification", model=model, image_processor=tiny_image_processor())
    image = Image.fromarray((np.random.rand(32, 32, 3) * 255).astype("uint8"))
    answer = classifier(image, thresholds=1.0, combine="mean", budget=1.5, top_k=1)[0]
    assert answer["levels_used"] == [0.5, 0.75] and 0 < answer["cost"] <= 1.5
