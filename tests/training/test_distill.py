"""SmallestLevelDistillation (`ICPCConfig(distill_smallest=True)`): each training step larger than the smallest
level adds that level's pass, trained on the step's own prediction; nothing else changes."""

import pytest
import torch
from datasets import Dataset
from helpers import quiet_cpu_args, tiny_image_processor, tiny_vit
from transformers import Trainer

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model
from icpc_hf.training.accounting import TrainingAccount
from icpc_hf.training.distill import SmallestLevelDistillation, divergence


def batch(icpc, level, count=4, **kwargs):
    torch.manual_seed(0)
    features = [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(count)]
    return ICPCDataCollator(None, icpc, level=level, **kwargs)(features)


@pytest.fixture
def model_and_icpc():
    icpc = ICPCConfig(levels=[0.5, 0.75, 1.0], distill_smallest=True)
    return patch_model(tiny_vit(), icpc), icpc


class PixelSizes:
    """The image sizes a model's forward passes receive, after every pre-hook."""

    def __init__(self, model):
        self.sizes = []
        model.vit.embeddings.register_forward_pre_hook(lambda m, args: self.sizes.append(tuple(args[0].shape[-2:])))


def test_a_larger_level_adds_the_smallest_levels_divergence_to_the_loss(model_and_icpc):
    model, icpc = model_and_icpc
    model.train()
    inputs = batch(icpc, 1.0)
    plain = model(**inputs)
    small = model(**batch(icpc, 0.5))
    distillation = SmallestLevelDistillation()
    distillation.start(model, icpc)
    sizes = PixelSizes(model)
    distilled = model(**inputs)
    assert sizes.sizes == [(32, 32), (16, 16)]  # the step's own level, then the smallest (half the side)
    expected = plain.loss + divergence(small.logits, plain.logits)
    assert torch.allclose(distilled.loss, expected, atol=1e-6)
    assert torch.equal(distilled.logits, plain.logits)  # the step's prediction is its own level's
    distilled.loss.backward()
    assert model.vit.embeddings.patch_embeddings.projection.weight.grad is not None


def test_the_smallest_level_evaluation_and_a_stopped_hook_add_nothing(model_and_icpc):
    model, icpc = model_and_icpc
    distillation = SmallestLevelDistillation()
    distillation.start(model, icpc)
    sizes = PixelSizes(model)
    model.train()
    model(**batch(icpc, 0.5))  # already the smallest level: one pass
    model.eval()
    model(**batch(icpc, 1.0))
    with torch.no_grad():
        model.train()
        model(**batch(icpc, 1.0))
    distillation.stop()
    plain = model(**batch(icpc, 1.0))
    assert sizes.sizes == [(16, 16), (32, 32), (32, 32), (32, 32)]
    assert plain.loss.requires_grad


def test_the_divergence_is_zero_for_equal_predictions_and_carries_no_teacher_gradient():
    teacher = torch.randn(5, 3, requires_grad=True)
    student = teacher.detach().clone().requires_grad_(True)
    value = divergence(student, teacher)
    assert value.item() == pytest.approx(0.0, abs=1e-6)
    (divergence(student + torch.randn(5, 3), teacher)).backward()
    assert teacher.grad is None and student.grad is not None


def test_a_device_path_batch_is_distilled_from_its_full_size_input(model_and_icpc):
    model, icpc = model_and_icpc
    model.train()
    on_cpu = model(**batch(icpc, 0.75))
    distillation = SmallestLevelDistillation()
    distillation.start(model, icpc)
    sizes = PixelSizes(model)
    on_device = model(**batch(icpc, 0.75, resize_on_device=True))
    assert sizes.sizes == [(24, 24), (16, 16)]
    assert on_device.loss > on_cpu.loss  # the divergence is added (and positive for a random model)


def test_the_smallest_pass_costs_tokens_but_is_no_new_sample(model_and_icpc):
    model, icpc = model_and_icpc
    account, distillation = TrainingAccount(), SmallestLevelDistillation()
    account.start(model, icpc)
    distillation.start(model, icpc)
    model.train()
    model(**batch(icpc, 1.0))
    totals = account.train_totals
    # 4 samples at full size (64 + 1 tokens each) and their pass at half the side (16 + 1)
    assert (totals["samples"], totals["tokens"], totals["full_tokens"]) == (4, 4 * 65 + 4 * 17, 4 * 65)


def test_text_and_regression_models_are_refused_with_the_fix():
    from transformers import BertConfig, BertForSequenceClassification

    bert = BertForSequenceClassification(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    )
    icpc = ICPCConfig(distill_smallest=True)
    patch_model(bert, icpc)
    with pytest.raises(ValueError, match="pruned in the collator"):
        SmallestLevelDistillation().start(bert, icpc)
    vit_icpc = ICPCConfig(distill_smallest=True)
    regression = patch_model(tiny_vit(num_labels=1), vit_icpc)
    with pytest.raises(ValueError, match="single-label classification"):
        SmallestLevelDistillation().start(regression, vit_icpc)
    with pytest.raises(TypeError, match="distill_smallest"):
        ICPCDataCollator(None, ICPCConfig(distill_smallest="yes"))


def test_the_trainer_trains_the_smallest_level_and_leaves_no_hook(tmp_path):
    icpc = ICPCConfig(levels=[0.5, 1.0], schedule="progressive", distill_smallest=True)
    model = patch_model(tiny_vit(), icpc)
    data = Dataset.from_list([{"pixel_values": torch.randn(3, 32, 32).tolist(), "label": i % 3} for i in range(16)])
    data.set_format("torch")
    sizes = PixelSizes(model)
    callback = ICPCCallback(calibrate=False)
    trainer = Trainer(
        model=model,
        args=quiet_cpu_args(tmp_path, num_train_epochs=2, per_device_train_batch_size=8, logging_steps=1),
        train_dataset=data,
        data_collator=ICPCDataCollator(tiny_image_processor(), icpc),
        callbacks=[callback],
    )
    trainer.train()
    assert (16, 16) in sizes.sizes and (32, 32) in sizes.sizes
    assert callback.train_totals["samples"] == 32  # two epochs of 16: the smallest passes are not samples
    assert not model._forward_hooks  # the hook lives only while training
