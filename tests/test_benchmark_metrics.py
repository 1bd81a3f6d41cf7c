"""The benchmark's `compute_metrics` for single-label tasks, and the text arm that keeps the most accurate checkpoint."""

import os
import sys

import numpy as np
from transformers import EvalPrediction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
from tasks import accuracy_metric, text_arms  # noqa: E402

LOGITS = np.array([[2.0, 0.1, 0.0], [0.0, 1.0, 3.0], [0.5, 0.4, 0.0], [0.0, 2.0, 1.0]])
LABELS = np.array([0, 2, 1, 1])  # right, right, wrong, right


def test_accuracy_is_the_share_of_argmax_predictions_that_match_the_labels():
    assert accuracy_metric(EvalPrediction(predictions=LOGITS, label_ids=LABELS)) == {"accuracy": 0.75}


def test_accuracy_reads_the_logits_first_when_the_model_returns_several_outputs():
    outputs = (LOGITS, np.zeros((4, 5, 8)))
    assert accuracy_metric(EvalPrediction(predictions=outputs, label_ids=LABELS)) == {"accuracy": 0.75}


def test_the_best_accuracy_arm_keeps_the_checkpoint_the_metric_names():
    arm = text_arms()["icpc importance constant best accuracy"]
    assert arm.metrics is accuracy_metric
    assert arm.args["metric_for_best_model"] == "accuracy" and arm.args["greater_is_better"] is True
    assert arm.args["load_best_model_at_end"] is True
    loss_arm = text_arms()["icpc importance constant best checkpoint"]
    assert loss_arm.metrics is None and "metric_for_best_model" not in loss_arm.args
    shared = {k: v for k, v in arm.args.items() if k not in ("metric_for_best_model", "greater_is_better")}
    assert shared == loss_arm.args


def test_the_reserve_draws_held_out_texts_and_leaves_the_other_splits_as_they_were():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
    from text_classification import split_per_label

    texts = [[f"a{i}" for i in range(40)], [f"b{i}" for i in range(12)]]  # label 1 has 2 texts to spare
    plain = split_per_label(texts, per_label=10, seed=3)
    with_reserve = split_per_label(texts, per_label=10, seed=3, reserve_factor=3)
    assert {k: v for k, v in with_reserve.items() if k != "reserve"} == plain
    reserve = with_reserve["reserve"]
    assert [label for _, label in reserve] == [0] * 6 + [1] * 2  # 3 x 2 validation texts, or what is left
    drawn = {text for split in plain.values() for text, _ in split}
    assert not drawn & {text for text, _ in reserve} and len({text for text, _ in reserve}) == 8


def test_the_data_fingerprint_changes_with_any_feature_and_only_then():
    import torch
    from harness import Task, data_fingerprint

    def task(first_token: int, pixel: float) -> Task:
        train = [{"input_ids": [101, first_token, 102], "labels": 0}, {"pixel_values": torch.full((2, 2), pixel)}]
        test = [{"input_values": np.arange(4, dtype=np.float32), "labels": 1}]
        return Task("t", train, test, None, None, None, 1, 1, 1.0, validation=[], reserve=None)

    same = data_fingerprint(task(7, 0.5))
    assert data_fingerprint(task(7, 0.5)) == same and len(same) == 64
    assert data_fingerprint(task(8, 0.5)) != same and data_fingerprint(task(7, 0.25)) != same
    moved = task(7, 0.5)
    moved.validation, moved.test = moved.test, []  # the same features in another split
    assert data_fingerprint(moved) != same
