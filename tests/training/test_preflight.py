"""The checks at the start of training, without a Trainer: what they refuse, what they warn of, what they find."""

import logging
from types import SimpleNamespace

import pytest
from torch.utils.data import DataLoader

from icpc_hf import ICPCConfig, ICPCDataCollator
from icpc_hf.training.preflight import check_before_training, check_servable, training_processor, warn_about_padding


def args(**kwargs):
    values = dict(eval_strategy="no", push_to_hub=False, train_sampling_strategy="random")
    values.update(kwargs)
    return SimpleNamespace(**values)


class UserCollate:
    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features):
        return self.collator(features)


class Prepared:
    """Accelerate's DataLoader adapters: the DataLoader is `base_dataloader`."""

    def __init__(self, loader):
        self.base_dataloader = loader


def test_the_processor_is_the_collators_else_the_trainers():
    collator = ICPCDataCollator("collator's processor")
    assert training_processor(DataLoader([1], collate_fn=collator), "trainer's") == "collator's processor"
    wrapped = SimpleNamespace(collate_fn=SimpleNamespace(data_collator=collator))  # Trainer's RemoveColumnsCollator
    assert training_processor(Prepared(wrapped), "trainer's") == "collator's processor"
    assert training_processor(DataLoader([1], collate_fn=UserCollate(collator)), "trainer's") == "trainer's"
    assert training_processor(None, "trainer's") == "trainer's"


def test_no_processor_refuses_a_push_and_warns_of_unservable_saves(caplog):
    with pytest.raises(ValueError, match="processing_class=processor.*publish=False"):
        check_servable(None, push_to_hub=True)
    with caplog.at_level(logging.WARNING):
        check_servable(None, push_to_hub=False)
        check_servable("processor", push_to_hub=True)
    assert [r.getMessage().startswith("ICPCCallback found no processor") for r in caplog.records] == [True]


@pytest.mark.parametrize(
    "model_type, sampling, stream, warned",
    [
        ("bert", "random", False, True),
        ("bert", "group_by_length", False, False),
        ("bert", "random", True, False),
        ("vit", "random", False, False),
    ],
)
def test_texts_in_random_batches_are_warned_of(caplog, model_type, sampling, stream, warned):
    with caplog.at_level(logging.WARNING):
        warn_about_padding(SimpleNamespace(model_type=model_type), args(train_sampling_strategy=sampling), stream)
    assert any("group_by_length" in r.getMessage() for r in caplog.records) == warned


def test_one_level_to_calibrate_is_refused_only_when_there_will_be_an_evaluation_set():
    icpc = ICPCConfig(levels=[1.0], cascade_levels=[1.0], model_type="vit")
    target = {"max_accuracy_loss": 0.0}
    common = dict(stream=False, calibration_target=target, processor="processor", publish=True)
    with pytest.raises(ValueError, match="one level.*nothing to calibrate"):
        check_before_training(args(), icpc, has_eval_set=True, **common)
    with pytest.raises(ValueError, match="one level"):
        check_before_training(args(eval_strategy="epoch"), icpc, has_eval_set=False, **common)
    check_before_training(args(), icpc, has_eval_set=False, **common)  # no evaluation set: full size is served
    check_before_training(args(), icpc, has_eval_set=True, **{**common, "calibration_target": None})


def test_publishing_off_needs_no_processor():
    icpc = ICPCConfig(levels=[0.5, 1.0], model_type="vit")
    common = dict(stream=False, calibration_target=None, has_eval_set=False, processor=None)
    with pytest.raises(ValueError, match="no processor reaches it"):
        check_before_training(args(push_to_hub=True), icpc, publish=True, **common)
    check_before_training(args(push_to_hub=True), icpc, publish=False, **common)
