"""Every benchmark task as a `harness.Task` record, on the real offline data sets of ../shared/DATA.md.

`SIDE_BY_SIDE` holds the fixed-epoch tasks of run.py, one per modality, with the ICPC settings they were measured with
(the `constant` schedule; the default is now `progressive`). `TIME_TO_ACCURACY` holds the tasks of convergence.py,
small enough that every arm trains to convergence on 2 CPU cores, each with its arms. `quick=True` shrinks data,
model and epochs to seconds for CI. The data builders are the examples' own, so the benchmarks measure what the
examples show.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from harness import Arm, Task, modality_of  # also puts examples/ on the path
from peers import add_patch_dropout
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, default_data_collator

from icpc_hf import ICPCConfig, icpc_settings, patch_model, registration_for
from icpc_hf.training.budget import level_costs as training_level_costs

FASHION_LABELS = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
CANVAS = 32
PRETRAINED = os.path.join(os.path.expanduser("~"), ".cache", "icpc_hf_benchmarks", "vit-fashion-32.pt")


def small_vit(
    canvas: int, patch: int, hidden: int, layers: int, channels: int = 1, names: list[str] = FASHION_LABELS
) -> Callable[[int], ViTForImageClassification]:
    """A factory of same-seed, same-weights ViTs from a small config (no pretrained image weights are offline)."""

    def new_model(seed: int) -> ViTForImageClassification:
        torch.manual_seed(seed)
        return ViTForImageClassification(
            ViTConfig(
                image_size=canvas,
                patch_size=patch,
                num_channels=channels,
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=4,
                intermediate_size=2 * hidden,
                num_labels=len(names),
                id2label=dict(enumerate(names)),
                label2id={n: i for i, n in enumerate(names)},
            )
        )

    return new_model


def fashion_features(
    images: np.ndarray, labels: np.ndarray, indices: np.ndarray, canvas: int, smallest: int | None, seed: int
) -> list[dict]:
    """Fashion-MNIST items as features: each at a random side from `smallest` to `canvas` on a blank canvas
    (`scale_varied`), or with `smallest=None` the plain item resized to the canvas; values in [-1, 1]."""
    from _shared import scale_varied

    items = torch.from_numpy(images[indices].astype(np.float32))[:, None] / 255.0
    if smallest is None:
        placed = (
            items
            if items.shape[-1] == canvas
            else torch.nn.functional.interpolate(
                items, size=(canvas, canvas), mode="bilinear", antialias=True, align_corners=False
            )
        )
    else:
        placed = scale_varied(items, canvas, smallest, seed)
    pixels = placed * 2.0 - 1.0  # background -1, as the processor would
    return [{"pixel_values": p, "label": int(y)} for p, y in zip(pixels, labels[indices])]


def grey_processor(canvas: int) -> ViTImageProcessor:
    return ViTImageProcessor(size={"height": canvas, "width": canvas}, image_mean=[0.5], image_std=[0.5])


# The fixed-epoch tasks (run.py): one per modality.


def image_task(quick: bool) -> Task:
    """ViT from scratch on Fashion-MNIST (28 x 28 grey, patch 4: a 7 x 7 grid)."""
    from _shared import load_fashion_mnist

    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    permutation = rng.permutation(len(train_images))
    train_idx = permutation[: 512 if quick else 12_000]
    val_idx = permutation[len(permutation) - (128 if quick else 1_000) :]
    test_idx = rng.permutation(len(test_images))[: 256 if quick else 2_000]
    plain = partial(fashion_features, canvas=28, smallest=None, seed=0)
    hidden = 64 if quick else 128
    return Task(
        name="image",
        train=plain(train_images, train_labels, train_idx),
        test=plain(test_images, test_labels, test_idx),
        validation=plain(train_images, train_labels, val_idx),
        new_model=small_vit(28, 4, hidden, 2 if quick else 4),
        processor=grey_processor(28),
        baseline_collator=default_data_collator,
        epochs=2 if quick else 6,
        batch_size=128,
        learning_rate=2e-3,
        # Mostly 12-pixel inputs: this small ViT learns Fashion-MNIST best from them (see the ablations), and
        # stride positions were the best strategy when all levels were drawn alike.
        icpc={
            "levels": [3 / 7, 5 / 7, 1.0],
            "level_weights": [0.7, 0.15, 0.15],
            "position_strategy": "stride",
            "schedule": "constant",
            "cascade_levels": [3 / 7, 5 / 7, 1.0],
            "thresholds": 0.9,
        },
    )


def video_task(quick: bool, name: str = "video", motion: Any = None) -> Task:
    """VideoMAE from a small config on Fashion-MNIST items moving across 8 frames (examples/video_classification;
    `motion`: which items move which ways on what canvas, the example's sliding tops and shoes unless given)."""
    import warnings

    import video_classification as video
    from transformers import VideoMAEImageProcessor

    motion = motion or video.SLIDING
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        processor = VideoMAEImageProcessor(
            size={"shortest_edge": motion.canvas},
            crop_size={"height": motion.canvas, "width": motion.canvas},
            image_mean=[0.5],
            image_std=[0.5],
        )
    clips = [
        (128 if quick else 3000, "train", 0),
        (64 if quick else 1000, "test", 1),
        (64 if quick else 500, "train", 2),
    ]
    train, test, validation = (video.clip_features(processor, *video.make_clips(*c, motion=motion)) for c in clips)
    return Task(
        name=name,
        train=train,
        test=test,
        validation=validation,
        new_model=partial(video.new_model, motion=motion),
        processor=processor,
        baseline_collator=default_data_collator,
        epochs=1 if quick else 10,
        batch_size=32,
        learning_rate=2e-3,
        # Mostly half the frames at half the side: 1.85x against 1.5x with uniform levels at equal accuracy (seed 0).
        icpc={
            "position_strategy": "stride",
            "levels": [0.5, 0.75, 1.0],
            "level_weights": [0.6, 0.2, 0.2],
            "schedule": "constant",
        },
    )


def audio_task(
    quick: bool, name: str = "audio", words: list[str] | None = None, takes: int = 2, noise_snr_db: float | None = None
) -> Task:
    """AST from a small config on espeak-ng spoken words (the digits unless `words`), split by voice
    (examples/audio_classification)."""
    import audio_classification as audio

    words = words or audio.DIGITS
    voices = [f"{accent}+{variant}" for accent in audio.ACCENTS for variant in audio.VARIANTS]
    if quick:
        voices = voices[:12:2] + voices[-6:]
    splits, extractor = audio.spoken_digits(
        voices,
        1 if quick else takes,
        4 if quick else 20,
        seed=0,
        validation_voices=2 if quick else 8,
        words=words,
        noise_snr_db=noise_snr_db,
    )
    hidden, layers = (32, 2) if quick else (96, 3)
    return Task(
        name=name,
        train=splits["train"],
        test=splits["test"],
        validation=splits["validation"],
        new_model=lambda seed: audio.make_model(seed, hidden, layers, words),
        processor=extractor,
        baseline_collator=default_data_collator,
        epochs=2 if quick else 10,
        batch_size=32,
        learning_rate=5e-4,
        icpc={
            "trim_padding": True,
            "levels": [5 / 15, 7 / 15, 10 / 15, 1.0],
            "level_weights": [0.5, 0.3, 0.1, 0.1],
            "schedule": "constant",
        },
    )


TEXT_BATCHES = {"train_sampling_strategy": "group_by_length"}
"""Every text arm's batching, the baseline's included: texts of similar length share a batch, so padding is short."""


RESERVE_FACTOR = 3
"""Text tasks hold, per label, up to three times its validation texts in reserve (`Task.reserve`)."""


def minilm_task(name: str, splits: dict, labels: tuple[str, ...], epochs: int, icpc: dict) -> Task:
    """Pretrained all-MiniLM-L6-v2 fine-tuned on `splits` (text, label) cut at 128 tokens; every arm groups batches
    by length, so pruning shortens padded batches (the ablations add plain batches)."""
    import text_classification as text
    from transformers import AutoTokenizer, DataCollatorWithPadding

    folder = text.model_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return Task(
        name=name,
        train=text.tokenize(tokenizer, splits["train"], 128),
        test=text.tokenize(tokenizer, splits["test"], 128),
        new_model=partial(text.fresh_model, folder, labels=labels),
        validation=text.tokenize(tokenizer, splits["validation"], 128),
        reserve=text.tokenize(tokenizer, splits["reserve"], 128) if "reserve" in splits else None,
        processor=tokenizer,
        baseline_collator=DataCollatorWithPadding(tokenizer),
        epochs=epochs,
        batch_size=16,
        learning_rate=2e-4,
        icpc=icpc,
        baseline_args=TEXT_BATCHES,
    )


def text_task(quick: bool) -> Task:
    """Pretrained all-MiniLM-L6-v2 fine-tuned on fortune-file topics (examples/text_classification)."""
    import text_classification as text
    from transformers import AutoTokenizer

    from icpc_hf.pruning import low_idf_words

    splits = text.split_topics(12 if quick else 150, seed=0, reserve_factor=RESERVE_FACTOR)
    # Insignificant words: the built-in stop words plus the 150 most widespread words of the training texts, mostly
    # pruned (level 0.25 keeps a quarter of them): 0.70 of the tokens against 0.82 with the defaults.
    tokenizer = AutoTokenizer.from_pretrained(text.model_folder())
    widespread = low_idf_words([t for t, _ in splits["train"]], tokenizer, count=150)
    icpc = {
        "stop_words": widespread,
        "levels": [0.25, 0.5, 1.0],
        "level_weights": [0.5, 0.3, 0.2],
        "schedule": "constant",
    }
    return minilm_task("text", splits, text.TOPICS, 1 if quick else 3, icpc)


SIDE_BY_SIDE: dict[str, Callable[[bool], Task]] = {
    "image": image_task,
    "text": text_task,
    "audio": audio_task,
    "video": video_task,
}


# The time-to-accuracy tasks (convergence.py): each with the arms it runs.


def grid_arms(model, levels: list[float], token_ratio: float) -> dict[str, Arm]:
    """The arms every grid task runs: the baseline, ICPC's variants, and the peers at the same levels (PatchDropout
    where the registry says the model is an image model)."""
    smallest = levels[0]
    middle = levels[len(levels) // 2]
    arms = {
        "baseline": Arm(None, eval_levels=[1.0], note="plain Trainer, full size"),
        "icpc constant crop": Arm(
            {"position_strategy": "crop", "schedule": "constant"}, note="every level alike, every epoch"
        ),
        "icpc constant stride": Arm({"position_strategy": "stride", "schedule": "constant"}),
        "icpc progressive crop": Arm(
            {"position_strategy": "crop", "schedule": "progressive"},
            note="the smallest level allowed rises over the run",
        ),
        "icpc anchored crop": Arm(
            {"position_strategy": "crop", "schedule": "anchored"},
            note="progressive, with the cascade's levels drawn in every epoch",
        ),
        "icpc progressive stride": Arm(
            {"position_strategy": "stride", "schedule": "progressive"},
            note="field-of-view positions: a smaller image keeps the full table's spread",
        ),
        "icpc anchored stride": Arm({"position_strategy": "stride", "schedule": "anchored"}),
        "icpc bookends": Arm(
            {"schedule": "bookends"}, note="every epoch, each batch at the smallest level or at full size, a fair coin"
        ),
        "icpc progressive bookends": Arm(
            {"schedule": "progressive_bookends"},
            note="progressive until its last stage, then each batch at the smallest level or at full size",
        ),
        "icpc progressive distilled": Arm(
            {"schedule": "progressive", "distill_smallest": True},
            note="progressive, and every step also trains the smallest level on the step's own prediction",
        ),
        "icpc progressive interpolate": Arm(
            {"position_strategy": "interpolate", "schedule": "progressive"},
            note="the full table resampled to the smaller grid, as Transformers' interpolate_pos_encoding",
        ),
        "icpc adaptive crop": Arm(
            {"position_strategy": "crop", "schedule": "adaptive"},
            args={"eval_strategy": "epoch"},  # the Trainer's evaluations move it; their seconds count as training
            note="the floor rises after an evaluation with a new best loss, falls after one without",
        ),
        "icpc target 2x crop": Arm({"position_strategy": "crop", "target_speedup": 2.0, "schedule": "constant"}),
        f"fixed level {smallest:.3g}": Arm(
            {"levels": [smallest]}, eval_levels=[smallest, 1.0], note="just downscale: one small size throughout"
        ),
        f"fixed level {middle:.3g}": Arm({"levels": [middle]}, eval_levels=[middle, 1.0]),
        "progressive resizing": Arm(
            {"schedule": "progressive_resizing", "position_strategy": "crop"},
            note="one size per epoch, growing; full size for the last fifth (Composer)",
        ),
    }
    if modality_of(model) == "image":
        arms[f"PatchDropout {token_ratio:.2f}"] = Arm(
            None,
            prepare=lambda fresh: add_patch_dropout(fresh, token_ratio, 0),
            eval_levels=[1.0],
            note="random patches dropped in training at ICPC's token budget",
            token_ratio=token_ratio,
        )
    return arms


def with_grid_arms(task: Task, **changes) -> Task:
    """The task to convergence: the levels `ICPCConfig()` resolves for its model, and the grid arms at those levels
    (the peers at their mean token share, the even draw's)."""
    model = patch_model(task.new_model(0), ICPCConfig())
    settings = icpc_settings(model)
    costs = training_level_costs(registration_for(model.config).modality, settings)
    levels = list(settings.levels)
    return dataclasses.replace(task, levels=levels, arms=grid_arms(model, levels, float(np.mean(costs))), **changes)


@dataclass(frozen=True)
class FashionGrid:
    """A ViT trained from scratch on Fashion-MNIST items: its grid, its data and its regime."""

    canvas: int
    patch: int
    smallest: int | None
    """Items drawn at a random side from this to the canvas (None: every item fills the frame)."""
    train_size: int
    held_size: int
    epochs: int
    eval_every: int = 1
    hidden: int = 96


FASHION_GRIDS = {
    # Scale-varied items (12 to 32 pixels) on a 32-pixel canvas, patch 4 (8 x 8 grid), 3,000 images, 40 epochs.
    "image": FashionGrid(CANVAS, 4, 12, 3_000, 2_000, 40, eval_every=2),
    # Plain items filling a 28-pixel frame, patch 4 (7 x 7 grid), 2,000 images, 30 epochs: data-limited.
    "image_plain": FashionGrid(28, 4, None, 2_000, 2_000, 30),
    # Scale-varied items (8 to 36 pixels) on a 36-pixel canvas, patch 6 (a coarse 6 x 6 grid), 3,000 images,
    # 40 epochs: data-limited.
    "image_coarse": FashionGrid(36, 6, 8, 3_000, 2_000, 40, eval_every=2),
    # Scale-varied items (10 to 48 pixels) on a 48-pixel canvas, patch 4 (a fine 12 x 12 grid), 2,000 images,
    # 24 epochs: data-limited, 144 tokens a full-size image.
    "image_fine": FashionGrid(48, 4, 10, 2_000, 1_500, 24, eval_every=2, hidden=64),
    # Plain 28-pixel items, patch 4 (7 x 7), 8,000 images, 4 epochs: under-trained (the baseline still improves).
    "image_undertrained": FashionGrid(28, 4, None, 8_000, 2_000, 4),
}


def fashion_task(name: str, quick: bool) -> Task:
    """The Fashion-MNIST task `FASHION_GRIDS[name]` describes: validation and test are halves of the held-out set
    (the items of test-split images, drawn like the training ones)."""
    from _shared import load_fashion_mnist

    grid = FASHION_GRIDS[name]
    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    train_idx = rng.permutation(len(train_images))[: 256 if quick else grid.train_size]
    held_idx = rng.permutation(len(test_images))[: 256 if quick else grid.held_size]
    hidden = 48 if quick else grid.hidden
    held_out = fashion_features(test_images, test_labels, held_idx, grid.canvas, grid.smallest, 2)
    cut = 128 if quick else int(grid.held_size * 0.4)
    task = Task(
        name=name,
        train=fashion_features(train_images, train_labels, train_idx, grid.canvas, grid.smallest, 1),
        validation=held_out[:cut],
        test=held_out[cut:],
        new_model=small_vit(grid.canvas, grid.patch, hidden, 2 if quick else 4),
        processor=grey_processor(grid.canvas),
        baseline_collator=default_data_collator,
        epochs=3 if quick else grid.epochs,
        batch_size=64,
        learning_rate=2e-3,
    )
    return with_grid_arms(task, eval_every=1 if quick else grid.eval_every)


def pretrained_vit(quick: bool) -> dict:
    """A small ViT pretrained once on 20,000 plain Fashion-MNIST items at 32 pixels (2 epochs, a few minutes on 2
    cores), cached: the stand-in for an ImageNet checkpoint, since no pretrained image weights are offline."""
    from _shared import load_fashion_mnist
    from transformers import Trainer, TrainingArguments

    path = PRETRAINED.replace(".pt", "-quick.pt") if quick else PRETRAINED
    if os.path.exists(path):
        return torch.load(path)
    images, labels = load_fashion_mnist("train")
    indices = np.random.default_rng(5).permutation(len(images))[: 512 if quick else 20_000]
    model = small_vit(CANVAS, 4, 48 if quick else 96, 2 if quick else 4)(0)
    args = TrainingArguments(
        output_dir=os.path.join(os.path.dirname(path), "pretraining"),
        num_train_epochs=2,
        per_device_train_batch_size=128,
        learning_rate=2e-3,
        warmup_steps=50,
        lr_scheduler_type="cosine",
        weight_decay=0.05,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
        logging_steps=10_000,
    )
    Trainer(
        model=model,
        args=args,
        train_dataset=fashion_features(images, labels, indices, CANVAS, None, 5),
        data_collator=default_data_collator,
    ).train()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    return state


def finetune_task(name: str, data: list[dict], names: list[str], quick: bool) -> Task:
    """The pretrained ViT (`pretrained_vit`) fine-tuned on `data` (400 training images, then validation and test
    halves of the rest) with a new classifier head, to convergence."""
    weights = pretrained_vit(quick)
    fresh = small_vit(CANVAS, 4, 48 if quick else 96, 2 if quick else 4, names=names)

    def new_model(seed: int) -> ViTForImageClassification:
        model = fresh(seed)  # the classifier head is new, initialised from the seed
        model.load_state_dict(weights, strict=False)
        return model

    cut = 128 if quick else 400
    train, held_out = data[:cut], data[400 : 400 + (256 if quick else 1_000)]
    return with_grid_arms(
        Task(
            name=name,
            train=train,
            validation=held_out[:cut],
            test=held_out[cut:],
            new_model=new_model,
            processor=grey_processor(CANVAS),
            baseline_collator=default_data_collator,
            epochs=3 if quick else 20,
            batch_size=32,
            learning_rate=5e-4,
        )
    )


def upsampled(images: torch.Tensor, labels: Any, side: int | None, seed: int) -> list[dict]:
    """Low-resolution images (N, 1, h, w, values in [0, 1]), shrunk to `side` pixels when given, and upsampled
    bilinearly to the canvas: the paper's regime of small images brought to the model's size. Shuffled by `seed`."""
    if side is not None:
        images = torch.nn.functional.interpolate(
            images, size=(side, side), mode="bilinear", antialias=True, align_corners=False
        )
    pixels = torch.nn.functional.interpolate(images, size=(CANVAS, CANVAS), mode="bilinear", align_corners=False)
    pixels = pixels * 2.0 - 1.0
    order = np.random.default_rng(seed).permutation(len(pixels))
    return [{"pixel_values": pixels[i], "label": int(labels[i])} for i in order]


def image_finetune_task(quick: bool) -> Task:
    """The paper's own regime: a pretrained ViT fine-tuned on a few hundred low-resolution images upsampled to its
    size (scikit-learn's 8 x 8 digits, bilinear to 32 pixels), to convergence."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    data = upsampled(images, digits.target, None, 0)
    return finetune_task("image_finetune", data, [str(d) for d in range(10)], quick)


def image_finetune_lowres_task(quick: bool) -> Task:
    """Round 4's confirm task: the same pretrained ViT fine-tuned on Fashion-MNIST items of the test split (none
    seen in pretraining) shrunk to 10 pixels and upsampled back to 32."""
    from _shared import load_fashion_mnist

    images, labels = load_fashion_mnist("test")
    picked = np.random.default_rng(7).permutation(len(images))[:1_400]
    items = torch.from_numpy(images[picked].astype(np.float32))[:, None] / 255.0
    return finetune_task("image_finetune_lowres", upsampled(items, labels[picked], 10, 0), FASHION_LABELS, quick)


def audio_convergence_task(quick: bool) -> Task:
    """The fixed-epoch audio task (AST on spoken digits, split by voice) to convergence, with the defaults."""
    return with_grid_arms(audio_task(quick), epochs=2 if quick else 30, icpc={})


def audio_words_convergence_task(quick: bool) -> Task:
    """A second audio task that does not saturate: 28 number words (near pairs such as thirteen/thirty) by unseen
    voices, one take per word and voice, in white noise at 10 dB SNR."""
    import audio_classification as audio

    task = audio_task(quick, "audio_words", audio.NUMBER_WORDS, takes=1, noise_snr_db=10.0)
    return with_grid_arms(task, epochs=2 if quick else 30, icpc={})


def video_convergence_task(quick: bool, name: str = "video", motion: Any = None) -> Task:
    """The fixed-epoch video task (VideoMAE on moving Fashion-MNIST items) to convergence, on fewer clips."""
    task = video_task(quick, name, motion)
    return with_grid_arms(task, icpc={}, **({} if quick else {"train": task.train[:1000], "epochs": 30}))


def video_diagonal_convergence_task(quick: bool) -> Task:
    """A second video task: other items (trousers, dresses, bags) moving diagonally on a 48-pixel canvas (6 x 6)."""
    import video_classification as video

    return video_convergence_task(quick, "video_diagonal", video.DIAGONAL)


def accuracy_metric(prediction: Any) -> dict[str, float]:
    """The Trainer's `compute_metrics` for single-label classification: the share of argmax predictions right.
    Not `_shared.accuracy`: it tries to load evaluate's metric script on every call (1.5 s here, offline), and the
    Trainer's evaluations count as training time in the arms that use this."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return {"accuracy": float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())}


def text_arms() -> dict[str, Arm]:
    """The arms every text task runs: the baseline (batches grouped by length, as the ICPC arms), the two scorers
    with the progressive schedule, the importance scorer's constant schedule (`ICPCConfig()`'s in the Trainer flow
    since the second text round), the same with the Trainer keeping its best checkpoint (by validation loss, and by
    validation accuracy), and one fixed importance level as peer. Schedules are pinned, so an arm keeps its meaning
    when the default changes."""
    importance = {"text_scorer": "importance"}
    best_checkpoint = {
        **TEXT_BATCHES,
        "eval_strategy": "epoch",  # the Trainer's evaluations and saves count as training time
        "save_strategy": "epoch",
        "save_total_limit": 1,
        "load_best_model_at_end": True,
    }
    return {
        "baseline": Arm(None, eval_levels=[1.0], note="plain Trainer, full texts, batches grouped by length"),
        "icpc progressive": Arm(
            {"text_scorer": "stop_words", "schedule": "progressive"},
            note="stop words and punctuation pruned, fewer as the run goes on",
        ),
        "icpc constant": Arm(
            {"text_scorer": "stop_words", "schedule": "constant"}, note="stop words, every level alike"
        ),
        "icpc importance": Arm(
            {**importance, "schedule": "progressive"},
            note="a level is the share of all words kept, ranked by importance",
        ),
        "icpc importance constant": Arm({**importance, "schedule": "constant"}, note="importance, every level alike"),
        "icpc importance constant best checkpoint": Arm(
            {**importance, "schedule": "constant"},
            args=best_checkpoint,
            note="importance, every level alike; the Trainer keeps the checkpoint best on validation, and the "
            "cascade is calibrated on it",
        ),
        "icpc importance constant best accuracy": Arm(
            {**importance, "schedule": "constant"},
            args={**best_checkpoint, "metric_for_best_model": "accuracy", "greater_is_better": True},
            metrics=accuracy_metric,
            note="importance, every level alike; the Trainer keeps the checkpoint most accurate on validation, "
            "and the cascade is calibrated on it",
        ),
        "fixed importance 0.5": Arm(
            {**importance, "levels": [0.5]}, eval_levels=[0.5, 1.0], note="the most important half of the words"
        ),
    }


def with_text_arms(task: Task, epochs: int) -> Task:
    """A text task with the default settings, the default levels evaluated, and the text arms."""
    levels = list(icpc_settings(patch_model(task.new_model(0), ICPCConfig())).levels)
    return dataclasses.replace(task, epochs=epochs, icpc={}, levels=levels, arms=text_arms())


def text_convergence_task(quick: bool) -> Task:
    """Pretrained MiniLM fine-tuned on fortune topics (short texts) with the default settings."""
    return with_text_arms(text_task(quick), 2 if quick else 16)


def package_task(name: str, sections: tuple[str, ...], min_tokens: int, quick: bool) -> Task:
    """Pretrained MiniLM fine-tuned on Debian package descriptions of `min_tokens`+ tokens labelled by archive
    section (200 descriptions a section), 8 epochs."""
    import package_descriptions as packages
    import text_classification as text
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(text.model_folder())
    splits = packages.split_sections(
        12 if quick else 200, tokenizer, min_tokens, sections=sections, reserve_factor=RESERVE_FACTOR
    )
    return with_text_arms(minilm_task(name, splits, sections, 1, {}), 1 if quick else 8)


def text_long_convergence_task(quick: bool) -> Task:
    """Descriptions of 100+ tokens from six sections (of 7,767 labelled descriptions in these sections)."""
    import package_descriptions as packages

    return package_task("text_long", packages.SECTIONS, 100, quick)


def text_packages_convergence_task(quick: bool) -> Task:
    """The text round's held-out task: descriptions of 30+ tokens from five sections no other text task uses."""
    return package_task("text_packages", ("mail", "editors", "math", "web", "database"), 30, quick)


def text_tools_convergence_task(quick: bool) -> Task:
    """The second text round's held-out task: descriptions of 30+ tokens from five more sections (text, fonts, video,
    utils, devel) no other text task uses, chosen by how many such descriptions they hold (200 or more)."""
    return package_task("text_tools", ("text", "fonts", "video", "utils", "devel"), 30, quick)


TIME_TO_ACCURACY: dict[str, Callable[[bool], Task]] = {
    **{name: partial(fashion_task, name) for name in FASHION_GRIDS},
    "image_finetune": image_finetune_task,
    "image_finetune_lowres": image_finetune_lowres_task,
    "audio": audio_convergence_task,
    "audio_words": audio_words_convergence_task,
    "video": video_convergence_task,
    "video_diagonal": video_diagonal_convergence_task,
    "text": text_convergence_task,
    "text_long": text_long_convergence_task,
    "text_packages": text_packages_convergence_task,
    "text_tools": text_tools_convergence_task,
}


def load(table: dict[str, Callable[[bool], Task]], name: str, quick: bool) -> Task:
    """A task of `table` by name; an unknown name lists the known ones."""
    if name not in table:
        raise SystemExit(f"No task {name!r}: choose from {', '.join(table)}.")
    return table[name](quick)
