"""The benchmark task of each modality, on the real offline data sets of ../shared/DATA.md.

Each builder returns a `run.Task`; `quick=True` shrinks data, model and epochs to seconds for CI. The ICPC
settings pin the `constant` schedule these fixed-epoch results were measured with (the default is now
`progressive`: benchmarks/convergence.py).
The data builders are the examples' own, so the benchmarks measure what the examples show.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, default_data_collator

from run import Task

FASHION_LABELS = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def image_task(quick: bool) -> Task:
    """ViT from scratch on Fashion-MNIST (28 x 28 grey, patch 4: a 7 x 7 grid)."""
    from _shared import load_fashion_mnist

    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    permutation = rng.permutation(len(train_images))
    train_idx = permutation[: 512 if quick else 12_000]
    val_idx = permutation[len(permutation) - (128 if quick else 1_000):]
    test_idx = rng.permutation(len(test_images))[: 256 if quick else 2_000]

    def features(images, labels, indices):
        pixels = (torch.from_numpy(images[indices].astype(np.float32))[:, None] / 255.0 - 0.5) / 0.5
        return [{"pixel_values": p, "label": int(y)} for p, y in zip(pixels, labels[indices])]

    hidden = 64 if quick else 128

    def new_model(seed: int) -> ViTForImageClassification:
        torch.manual_seed(seed)
        config = ViTConfig(
            image_size=28, patch_size=4, num_channels=1, hidden_size=hidden, num_hidden_layers=2 if quick else 4,
            num_attention_heads=4, intermediate_size=2 * hidden, num_labels=10,
            id2label=dict(enumerate(FASHION_LABELS)), label2id={n: i for i, n in enumerate(FASHION_LABELS)},
        )
        return ViTForImageClassification(config)

    processor = ViTImageProcessor(size={"height": 28, "width": 28}, image_mean=[0.5], image_std=[0.5])
    return Task(
        name="image", train=features(train_images, train_labels, train_idx),
        test=features(test_images, test_labels, test_idx), new_model=new_model, processor=processor,
        validation=features(train_images, train_labels, val_idx),
        baseline_collator=default_data_collator, epochs=2 if quick else 6, batch_size=128, learning_rate=2e-3,
        # Mostly 12-pixel inputs: this small ViT learns Fashion-MNIST best from them (see the ablations), and
        # stride positions were the best strategy when all levels were drawn alike.
        icpc={"levels": [3 / 7, 5 / 7, 1.0], "level_weights": [0.7, 0.15, 0.15], "position_strategy": "stride",
              "schedule": "constant",
              "cascade_levels": [3 / 7, 5 / 7, 1.0], "thresholds": 0.9},
    )


def video_task(quick: bool) -> Task:
    """VideoMAE from a small config on Fashion-MNIST items moving across 8 frames (examples/video_classification)."""
    import warnings

    import video_classification as video
    from transformers import VideoMAEImageProcessor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        processor = VideoMAEImageProcessor(
            size={"shortest_edge": video.CANVAS}, crop_size={"height": video.CANVAS, "width": video.CANVAS},
            image_mean=[0.5], image_std=[0.5],
        )
    train = video.clip_features(processor, *video.make_clips(128 if quick else 3000, "train", 0))
    test = video.clip_features(processor, *video.make_clips(64 if quick else 1000, "test", 1))
    validation = video.clip_features(processor, *video.make_clips(64 if quick else 500, "train", 2))
    return Task(
        name="video", train=train, test=test, validation=validation, new_model=video.new_model, processor=processor,
        baseline_collator=default_data_collator, epochs=1 if quick else 10, batch_size=32, learning_rate=2e-3,
        # Mostly half the frames at half the side: 1.85x against 1.5x with uniform levels at equal accuracy (seed 0).
        icpc={"position_strategy": "stride", "levels": [0.5, 0.75, 1.0], "level_weights": [0.6, 0.2, 0.2],
              "schedule": "constant"},
    )


def audio_task(quick: bool) -> Task:
    """AST from a small config on espeak-ng spoken digits, split by voice (examples/audio_classification)."""
    import audio_classification as audio

    voices = [f"{accent}+{variant}" for accent in audio.ACCENTS for variant in audio.VARIANTS]
    if quick:
        voices = voices[:12:2] + voices[-6:]
    splits, extractor = audio.spoken_digits(voices, 1 if quick else 2, 4 if quick else 20, seed=0,
                                            validation_voices=2 if quick else 8)
    hidden, layers = (32, 2) if quick else (96, 3)
    return Task(
        name="audio", train=splits["train"], test=splits["test"], validation=splits["validation"],
        new_model=lambda seed: audio.make_model(seed, hidden, layers),
        processor=extractor, baseline_collator=default_data_collator, epochs=2 if quick else 10, batch_size=32,
        learning_rate=5e-4,
        icpc={"trim_padding": True, "levels": [5 / 15, 7 / 15, 10 / 15, 1.0], "level_weights": [0.5, 0.3, 0.1, 0.1],
              "schedule": "constant"},
    )


def text_task(quick: bool) -> Task:
    """Pretrained all-MiniLM-L6-v2 fine-tuned on fortune-file topics (examples/text_classification)."""
    import text_classification as text
    from transformers import AutoTokenizer, DataCollatorWithPadding

    from icpc_hf.pruning import low_idf_words

    folder = text.model_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    splits = text.split_topics(12 if quick else 150, seed=0)
    # Insignificant words: the built-in stop words plus the 150 most widespread words of the training texts, mostly
    # pruned (level 0.25 keeps a quarter of them): 0.70 of the tokens against 0.82 with the defaults.
    widespread = low_idf_words([t for t, _ in splits["train"]], tokenizer, count=150)
    return Task(
        name="text", train=text.tokenize(tokenizer, splits["train"], 128),
        test=text.tokenize(tokenizer, splits["test"], 128), new_model=lambda seed: text.fresh_model(folder, seed),
        validation=text.tokenize(tokenizer, splits["validation"], 128),
        processor=tokenizer, baseline_collator=DataCollatorWithPadding(tokenizer), epochs=1 if quick else 3,
        batch_size=16, learning_rate=2e-4,
        icpc={"stop_words": widespread, "levels": [0.25, 0.5, 1.0], "level_weights": [0.5, 0.3, 0.2],
              "schedule": "constant"},
        # Every arm groups batches by length, so pruning shortens padded batches (the ablations add plain batches).
        baseline_args={"train_sampling_strategy": "group_by_length"},
    )
