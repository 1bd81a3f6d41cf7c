"""Transformers' own common model tests (`ModelTesterMixin`, from the transformers sdist) on one model type per
modality, ViT (image), BERT (text), AST (audio), VideoMAE (video), and on the two other image types whose default
position strategy reads the table (DeiT, DINOv2).

The sdist holds tests/test_modeling_common.py but not the per-model test files (tests/models/*), so the model
testers here are this project's: tiny configs and inputs of each type, with the attributes the mixin reads.
`run.py` runs this module twice, unpatched and with every model patched at construction (conftest.py).
"""

from __future__ import annotations

import unittest

import torch
from transformers import (
    ASTConfig,
    ASTForAudioClassification,
    ASTModel,
    BertConfig,
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    DeiTConfig,
    DeiTForImageClassification,
    DeiTForImageClassificationWithTeacher,
    DeiTForMaskedImageModeling,
    DeiTModel,
    Dinov2Config,
    Dinov2ForImageClassification,
    Dinov2Model,
    VideoMAEConfig,
    VideoMAEForPreTraining,
    VideoMAEForVideoClassification,
    VideoMAEModel,
    ViTConfig,
    ViTForImageClassification,
    ViTForMaskedImageModeling,
    ViTModel,
)
from transformers_tests.test_modeling_common import ModelTesterMixin, floats_tensor, ids_tensor, random_attention_mask

SIZES = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    initializer_range=0.02,
)


class ModelTester:
    """What ModelTesterMixin asks of a model tester, shared by the four types."""

    batch_size = 3
    is_training = True
    num_labels = 3
    num_choices = 2
    hidden_size = SIZES["hidden_size"]
    num_hidden_layers = SIZES["num_hidden_layers"]
    num_attention_heads = SIZES["num_attention_heads"]
    seq_length: int

    def __init__(self, parent: unittest.TestCase):
        self.parent = parent

    @property
    def encoder_seq_length(self) -> int:
        return self.seq_length

    def get_config(self):
        raise NotImplementedError

    def inputs(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def prepare_config_and_inputs_for_common(self):
        return self.get_config(), self.inputs()


class ViTTester(ModelTester):
    image_size, patch_size, num_channels = 16, 4, 3
    mask_length = (16 // 4) ** 2  # the patches (a mask covers them, not the CLS token)
    seq_length = mask_length + 1
    num_masks = 4

    def get_config_values(self) -> dict:
        return dict(
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.num_channels,
            num_labels=self.num_labels,
            **SIZES,
        )

    def get_config(self):
        return ViTConfig(**self.get_config_values(), encoder_stride=self.patch_size)

    def inputs(self):
        return {"pixel_values": floats_tensor([self.batch_size, self.num_channels, self.image_size, self.image_size])}


class DeiTTester(ViTTester):
    seq_length = ViTTester.mask_length + 2  # the CLS and distillation tokens

    def get_config(self):
        return DeiTConfig(**self.get_config_values(), encoder_stride=self.patch_size)


class Dinov2Tester(ViTTester):
    def get_config(self):
        values = self.get_config_values()
        del values["intermediate_size"]  # DINOv2 sizes its MLP by `mlp_ratio`
        return Dinov2Config(**values)


class BertTester(ModelTester):
    seq_length, vocab_size = 7, 99
    num_labels = 2  # question answering reads its start and end logits off `num_labels` outputs

    def get_config(self):
        return BertConfig(
            vocab_size=self.vocab_size,
            max_position_embeddings=64,
            type_vocab_size=2,
            num_labels=self.num_labels,
            num_choices=self.num_choices,
            **SIZES,
        )

    def inputs(self):
        shape = [self.batch_size, self.seq_length]
        return {
            "input_ids": ids_tensor(shape, self.vocab_size),
            "token_type_ids": ids_tensor(shape, 2),
            "attention_mask": random_attention_mask(shape),
        }


class ASTTester(ModelTester):
    max_length, num_mel_bins, patch_size, stride = 24, 16, 2, 2
    seq_length = ((16 - 2) // 2 + 1) * ((24 - 2) // 2 + 1) + 2  # the (frequency, time) patches, CLS, distillation

    def get_config(self):
        return ASTConfig(
            max_length=self.max_length,
            num_mel_bins=self.num_mel_bins,
            patch_size=self.patch_size,
            frequency_stride=self.stride,
            time_stride=self.stride,
            num_labels=self.num_labels,
            **SIZES,
        )

    def inputs(self):
        return {"input_values": floats_tensor([self.batch_size, self.max_length, self.num_mel_bins])}


class VideoMAETester(ModelTester):
    num_frames, tubelet_size, image_size, patch_size, num_channels = 4, 2, 16, 4, 3
    seq_length = mask_length = (4 // 2) * (16 // 4) ** 2  # no CLS token
    num_masks = seq_length // 2

    def get_config(self):
        return VideoMAEConfig(
            num_frames=self.num_frames,
            tubelet_size=self.tubelet_size,
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.num_channels,
            decoder_hidden_size=32,
            decoder_num_hidden_layers=1,
            decoder_num_attention_heads=4,
            decoder_intermediate_size=37,
            num_labels=self.num_labels,
            **SIZES,
        )

    def inputs(self):
        shape = [self.batch_size, self.num_frames, self.num_channels, self.image_size, self.image_size]
        return {"pixel_values": floats_tensor(shape)}


class Common(ModelTesterMixin):
    model_tester_class: type[ModelTester]

    def setUp(self):
        self.model_tester = self.model_tester_class(self)


class ViTCommonTest(Common, unittest.TestCase):
    model_tester_class = ViTTester
    test_resize_embeddings = False  # the input embeddings are a convolution, as for AST and VideoMAE
    all_model_classes = (ViTModel, ViTForImageClassification, ViTForMaskedImageModeling)


class DeiTCommonTest(Common, unittest.TestCase):
    model_tester_class = DeiTTester
    test_resize_embeddings = False
    all_model_classes = (
        DeiTModel,
        DeiTForImageClassification,
        DeiTForImageClassificationWithTeacher,
        DeiTForMaskedImageModeling,
    )


class Dinov2CommonTest(Common, unittest.TestCase):
    model_tester_class = Dinov2Tester
    test_resize_embeddings = False
    all_model_classes = (Dinov2Model, Dinov2ForImageClassification)


class BertCommonTest(Common, unittest.TestCase):
    model_tester_class = BertTester
    all_model_classes = (
        BertModel,
        BertForMaskedLM,
        BertForMultipleChoice,
        BertForNextSentencePrediction,
        BertForPreTraining,
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertForTokenClassification,
    )

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        if return_labels and model_class is BertForPreTraining:  # masked words and the next-sentence answer
            inputs["labels"] = torch.zeros_like(inputs["input_ids"])
            inputs["next_sentence_label"] = torch.zeros(inputs["input_ids"].shape[0], dtype=torch.long)
        return inputs


class ASTCommonTest(Common, unittest.TestCase):
    model_tester_class = ASTTester
    test_resize_embeddings = False
    all_model_classes = (ASTModel, ASTForAudioClassification)


class VideoMAECommonTest(Common, unittest.TestCase):
    model_tester_class = VideoMAETester
    test_resize_embeddings = False
    all_model_classes = (VideoMAEModel, VideoMAEForPreTraining, VideoMAEForVideoClassification)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        if model_class is VideoMAEForPreTraining:  # pretraining reconstructs masked tubelets: mask half of them
            mask = torch.zeros(self.model_tester.seq_length, dtype=torch.bool)
            mask[: self.model_tester.num_masks] = True
            inputs["bool_masked_pos"] = mask.expand(inputs["pixel_values"].shape[0], -1)
        return inputs
