"""Spoken digits with an Audio Spectrogram Transformer: plain training against ICPC spectrogram size modulation.

The data is real speech synthesised offline with espeak-ng (`apt-get install -y espeak-ng`): the ten digits said
by many voices (English accents x voice variants) at several speeds and pitches. The split is by voice, so the
test voices are never heard in training. The wav files are cached under ~/.cache/icpc_hf/espeak_digits.

    python examples/audio_classification.py            # the default run (a few minutes)
    python examples/audio_classification.py --quick    # a smoke run, under a minute

Prints accuracy and training wall time of the baseline and of ICPC (same seed, epochs, batch size and lr), the
cascade against full-size inference, and what `trim_padding` saves at inference.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification, Trainer

sys.path.insert(0, os.path.dirname(__file__))
from _shared import (  # noqa: E402
    accuracy,
    add_report_argument,
    cascade_vs_full,
    cpu_training_args,
    print_table,
    train_and_time,
)

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model, run_cascade  # noqa: E402
from icpc_hf.audio import content_frames, padding_value  # noqa: E402
from icpc_hf.wav import mono_waveform, read_wav  # noqa: E402

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
NUMBER_WORDS = [
    *DIGITS,
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
]
"""28 words, among them near pairs (thirteen/thirty, fourteen/forty, ...): a task the digits' voices do not saturate."""
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]
SPEEDS = [120, 150, 180, 210]
PITCHES = [30, 50, 70]
SAMPLING_RATE = 16000
# 128 frames of 10 ms: the slowest clips (speed 120) last about 1.2 s, so no clip is cut and the fastest ones
# (about 0.5 s) are more than half padding, which is what `trim_padding` removes.
MAX_LENGTH = 128
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "icpc_hf", "espeak_digits")


def synthesise(
    voices: list[str], takes_per_digit: int, seed: int, words: list[str] = DIGITS
) -> list[tuple[str, str, int]]:
    """(wav path, voice, word index) for each clip, synthesising the missing ones with espeak-ng."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed: run `apt-get install -y espeak-ng` first.")
    os.makedirs(CACHE, exist_ok=True)
    rng = random.Random(seed)
    clips, jobs = [], []
    for voice in voices:
        for label, word in enumerate(words):
            for speed, pitch in rng.sample(list(itertools.product(SPEEDS, PITCHES)), takes_per_digit):
                path = os.path.join(CACHE, f"{voice}_s{speed}_p{pitch}_{word}.wav")
                clips.append((path, voice, label))
                if not os.path.exists(path):
                    jobs.append(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", path, word])
    if jobs:
        print(f"synthesising {len(jobs)} clips with espeak-ng into {CACHE} ...", flush=True)
    for job in jobs:
        subprocess.run(job, check=True, capture_output=True)
    return clips


def featurise(clips, extractor: ASTFeatureExtractor, noise_snr_db: float | None = None, seed: int = 0) -> list[dict]:
    """Spectrograms once per clip (espeak writes 22.05 kHz: resampled to the extractor's 16 kHz); with
    `noise_snr_db`, white noise at that signal-to-noise ratio, seeded per clip, over the whole clip."""
    waveforms = [mono_waveform(read_wav(path), SAMPLING_RATE) for path, _, _ in clips]
    if noise_snr_db is not None:
        rng = np.random.default_rng(seed)
        waveforms = [
            w + rng.normal(0.0, np.sqrt(np.mean(w**2) / 10 ** (noise_snr_db / 10)), w.shape) for w in waveforms
        ]
    values = extractor(waveforms, sampling_rate=SAMPLING_RATE, return_tensors="pt")["input_values"]
    return [{"input_values": v, "label": label} for v, (_, _, label) in zip(values, clips)]


def spoken_digits(
    voices: list[str],
    takes: int,
    test_voices: int,
    seed: int,
    validation_voices: int = 0,
    words: list[str] = DIGITS,
    noise_snr_db: float | None = None,
):
    """Train, validation and test features split by voice: of a seeded shuffle, the first `test_voices` are the
    test set and the next `validation_voices` the validation set, so neither shares a speaker with training."""
    voices = list(voices)
    random.Random(seed).shuffle(voices)
    split_of = {voice: "test" for voice in voices[:test_voices]}
    split_of.update({voice: "validation" for voice in voices[test_voices : test_voices + validation_voices]})
    clips = synthesise(voices, takes, seed, words)
    extractor = ASTFeatureExtractor(num_mel_bins=64, max_length=MAX_LENGTH, sampling_rate=SAMPLING_RATE)
    features = featurise(clips, extractor, noise_snr_db, seed)
    splits = {"train": [], "validation": [], "test": []}
    for feature, (_, voice, _) in zip(features, clips):
        splits[split_of.get(voice, "train")].append(feature)
    return splits, extractor


def make_model(seed: int, hidden: int, layers: int, words: list[str] = DIGITS) -> ASTForAudioClassification:
    torch.manual_seed(seed)
    config = ASTConfig(
        num_mel_bins=64,
        max_length=MAX_LENGTH,
        patch_size=16,
        frequency_stride=10,
        time_stride=8,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        hidden_dropout_prob=0.1,
        num_labels=len(words),
        id2label=dict(enumerate(words)),
        label2id={w: i for i, w in enumerate(words)},
    )
    return ASTForAudioClassification(config)


def training_args(output_dir: str, args):
    return cpu_training_args(
        output_dir,
        args.report_to,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_steps=20,
        weight_decay=0.01,
        logging_steps=5,
        seed=args.seed,
        disable_tqdm=False,
    )


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--takes", type=int, default=2, help="speed/pitch takes per voice and digit")
    parser.add_argument("--test-voices", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (< 1 minute)")
    parser.add_argument("--output-dir", default="/tmp/icpc_audio_example")
    add_report_argument(parser)
    args = parser.parse_args()
    # One thread: on a small shared CPU, more threads than free cores make every step several times slower.
    torch.set_num_threads(1)
    hidden, layers = 96, 3
    voices = [f"{accent}+{variant}" for accent in ACCENTS for variant in VARIANTS]
    if args.quick:
        voices, args.epochs, args.takes, args.test_voices, hidden, layers = voices[:12:2] + voices[-6:], 2, 1, 4, 32, 2

    splits, extractor = spoken_digits(voices, args.takes, args.test_voices, args.seed)
    train, test = splits["train"], splits["test"]
    test_labels = [f["label"] for f in test]
    print(
        f"{len(train)} training clips from {len(voices) - args.test_voices} voices, "
        f"{len(test)} test clips from {args.test_voices} unseen voices",
        flush=True,
    )

    # Baseline: the unpatched AST, full spectrograms, the default collator.
    baseline = make_model(args.seed, hidden, layers)
    baseline_args = training_args(f"{args.output_dir}/baseline", args)
    baseline_trainer = Trainer(model=baseline, args=baseline_args, train_dataset=train)
    baseline_seconds = train_and_time(baseline_trainer)
    predictions = baseline_trainer.predict(test).predictions.argmax(-1)
    baseline_accuracy = accuracy(predictions, test_labels)

    # ICPC: the same model and seed, patched; levels drawn per sample per epoch. Then the same with trim_padding.
    def train_icpc(settings: ICPCConfig, name: str):
        model = patch_model(make_model(args.seed, hidden, layers), settings)
        trainer = Trainer(
            model=model,
            args=training_args(f"{args.output_dir}/{name}", args),
            train_dataset=train,
            data_collator=ICPCDataCollator(extractor, model.config.icpc),
            callbacks=[ICPCCallback()],
        )
        trainer.pop_callback(ICPCCallback).attach(trainer)  # ahead of the reporting callbacks (--report-to)
        seconds = train_and_time(trainer)
        ratios = [h["icpc/token_ratio"] for h in trainer.state.log_history if "icpc/token_ratio" in h]
        return model, seconds, float(np.mean(ratios)) if ratios else float("nan")

    model, icpc_seconds, icpc_ratio = train_icpc(ICPCConfig(seed=args.seed), "icpc")
    trim_model, trim_seconds, trim_ratio = train_icpc(ICPCConfig(seed=args.seed, trim_padding=True), "icpc_trim")
    inference = cascade_vs_full(model, test, extractor, test_labels, batch_size=64)
    trim_full = run_cascade(trim_model, test, extractor, levels=[1.0], batch_size=64)

    print_table(
        f"Spoken digits, AST from scratch, {args.epochs} epochs, {args.test_voices} unseen test voices",
        [
            {
                "run": "baseline (plain Trainer)",
                "test accuracy": baseline_accuracy,
                "train seconds": baseline_seconds,
                "train tokens vs full": 1.0,
            },
            {
                "run": "ICPC",
                "test accuracy": inference["full_accuracy"],
                "train seconds": icpc_seconds,
                "train tokens vs full": icpc_ratio,
            },
            {
                "run": "ICPC + trim_padding",
                "test accuracy": trim_full.accuracy(test_labels),
                "train seconds": trim_seconds,
                "train tokens vs full": trim_ratio,
            },
        ],
    )
    trim_inference = cascade_vs_full(trim_model, test, extractor, test_labels, batch_size=64)
    print_table(
        "Cascade (thresholds 0.9) against one full-size pass, same model and test clips",
        [
            {
                "model": name,
                "full accuracy": result["full_accuracy"],
                "full seconds": result["full_seconds"],
                "cascade accuracy": result["cascade_accuracy"],
                "cascade seconds": result["cascade_seconds"],
                "speed-up": result["cascade_speedup"],
                "FLOPs ratio": result["cascade_flops_ratio"],
                **{k.replace("answered_at_", "at "): v for k, v in result.items() if k.startswith("answered_at_")},
            }
            for name, result in (("ICPC", inference), ("ICPC + trim_padding", trim_inference))
        ],
    )
    sweep = []
    for threshold in (0.9, 0.7, 0.5):
        result, seconds = timed(
            lambda threshold=threshold: run_cascade(model, test, extractor, thresholds=threshold, batch_size=64)
        )
        sweep.append(
            {
                "threshold": threshold,
                "accuracy": result.accuracy(test_labels),
                "seconds": seconds,
                "FLOPs ratio": result.summary()["flops_ratio"],
                "mean tokens spent": float(result.spent_tokens.float().mean()),
            }
        )
    print_table("ICPC model: cascade thresholds", sweep)

    # Accuracy of each level on its own: the ICPC model against the baseline patched only for inference.
    patched_baseline = patch_model(copy.deepcopy(baseline), ICPCConfig(seed=args.seed))
    level_rows = []
    for level in model.config.icpc["cascade_levels"]:
        level_rows.append(
            {
                "level": round(level, 3),
                "baseline patched after training": run_cascade(
                    patched_baseline, test, extractor, levels=[level]
                ).accuracy(test_labels),
                "ICPC": run_cascade(model, test, extractor, levels=[level]).accuracy(test_labels),
            }
        )
    print_table("Accuracy per level (one pass at that level)", level_rows)

    # What trim_padding saves at inference: the model trained with it, fed test clips batched by length (as a
    # length-grouping sampler would), with and without the padding after each batch's longest clip.
    padded = ICPCConfig.from_dict({**trim_model.config.icpc, "trim_padding": False})
    lengths = content_frames(torch.stack([f["input_values"] for f in test]), padding_value(extractor))
    ordered = lengths.argsort().tolist()
    ordered_test = [test[i] for i in ordered]
    ordered_labels = [test_labels[i] for i in ordered]
    print(
        f"test clips: {float(lengths.float().mean()):.1f} of {MAX_LENGTH} frames hold audio on average, "
        "the rest is padding"
    )
    trim_rows = []
    for name, settings in (("padded to max_length", padded), ("trim_padding=True", None)):
        for level in (1.0, trim_model.config.icpc["cascade_levels"][0]):
            result, seconds = timed(
                lambda settings=settings, level=level: run_cascade(
                    trim_model, ordered_test, extractor, icpc=settings, levels=[level], batch_size=32
                )
            )
            trim_rows.append(
                {
                    "input": name,
                    "level": round(level, 3),
                    "accuracy": result.accuracy(ordered_labels),
                    "mean tokens": float(result.tokens.float().mean()),
                    "seconds": seconds,
                }
            )
    print_table("ICPC + trim_padding model at inference (test clips batched by length, 32 per batch)", trim_rows)


if __name__ == "__main__":
    main()
