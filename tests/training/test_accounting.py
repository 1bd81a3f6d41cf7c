"""TrainingAccount, without a Trainer: what a model trains on is counted, and each log gets the figures since the
previous one."""

import pytest
import torch
from helpers import tiny_vit

from icpc_hf import ICPCConfig, ICPCDataCollator, encoder_flops, patch_model
from icpc_hf.training.accounting import TrainingAccount


def batch(icpc, level, count=3):
    return ICPCDataCollator(None, icpc, level=level)([{"pixel_values": torch.randn(3, 32, 32), "label": 0}] * count)


@pytest.fixture
def model_and_icpc():
    icpc = ICPCConfig(levels=[0.5, 1.0])
    return patch_model(tiny_vit(), icpc), icpc


def test_training_calls_are_counted_compressed_and_at_full_size(model_and_icpc):
    model, icpc = model_and_icpc
    account = TrainingAccount()
    account.start(model, icpc)
    model.train()
    model(**batch(icpc, 0.5))  # 32x32 images in 4x4 patches: 16 + 1 tokens at half the side, 64 + 1 at full size
    model(**batch(icpc, 1.0, count=2))
    totals = account.train_totals
    assert (totals["samples"], totals["tokens"], totals["full_tokens"]) == (5, 3 * 17 + 2 * 65, 5 * 65)
    flops = encoder_flops(torch.tensor([17.0] * 3 + [65.0] * 2), model.config).sum()
    assert totals["flops"] == pytest.approx(float(flops)) and totals["full_flops"] > totals["flops"]


def test_evaluation_calls_and_calls_after_stop_are_not_counted(model_and_icpc):
    model, icpc = model_and_icpc
    account = TrainingAccount()
    account.start(model, icpc)
    account.start(model, icpc)  # starting again replaces the hook: batches are not counted twice
    model.train()
    model(**batch(icpc, 0.5))
    model.eval()
    model(**batch(icpc, 0.5))
    assert account.train_totals["samples"] == 3
    model.train()
    with pytest.raises((AttributeError, ValueError)):  # not a batch of this modality: the model refuses it too
        model(labels=torch.tensor([0]))
    assert account.train_totals["samples"] == 3
    account.stop()
    model.train()
    model(**batch(icpc, 0.5))
    assert account.train_totals["samples"] == 3


def test_figures_cover_the_batches_since_the_previous_log(model_and_icpc):
    model, icpc = model_and_icpc
    account = TrainingAccount()
    assert account.figures_since_last_log() is None  # nothing trained: no figures
    account.start(model, icpc)
    model.train()
    model(**batch(icpc, 0.5))
    first = account.figures_since_last_log()
    assert first["icpc/tokens_per_sample"] == 17 and first["icpc/token_ratio"] == pytest.approx(17 / 65)
    assert 0 < first["icpc/flops_saved"] < 1
    assert account.figures_since_last_log() is None  # consumed
    model(**batch(icpc, 1.0))
    second = account.figures_since_last_log()
    assert second["icpc/token_ratio"] == 1 and second["icpc/flops_saved"] == pytest.approx(0)
