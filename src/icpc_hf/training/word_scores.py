"""Fitting word importance on the training texts, for `ICPCConfig(text_scorer="importance")` (training code: the
served copy only needs word_importance.py, which reads the scores).

A word's score is its inverse document frequency times (1 + its smoothed log-lift towards the label it is most
concentrated in). Words found in every text and spread over every label score lowest; rare words and words typical
of one label score high; a word seen in fewer than `min_count` texts is not stored, so it counts as unseen: the most
important. That keeps the scores small enough for `config.icpc`.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..patching import base_model_of, icpc_settings
from ..pruning import token_vocabulary, word_texts
from ..registry import registration_for
from ..word_importance import is_protected

logger = logging.getLogger(__name__)

FIT_SAMPLE = 20_000
"""ICPCCallback fits on at most this many training texts (a stream's first ones)."""


def _class_index(labels: Sequence[Any] | None, count: int) -> list[int] | None:
    """Labels as class indices, or None; refuses what is not one class per text."""
    if labels is None:
        return None
    labels = list(labels)
    if len(labels) != count:
        raise ValueError(
            f"{len(labels)} labels for {count} texts: give one class label per text, or `labels=None` to fit on "
            "inverse document frequency alone."
        )
    classes = []
    for value in labels:
        value = value.item() if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 else value
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, str))
            or (isinstance(value, float) and not value.is_integer())
        ):
            raise ValueError(
                f"Word importance needs one class per text (an integer or a string label), got {value!r}: pass "
                "`labels=None` to fit on inverse document frequency alone (regression or multi-label data)."
            )
        classes.append(value)
    names = {name: index for index, name in enumerate(sorted(set(classes), key=str))}
    return [names[c] for c in classes]


def fit_word_scores(
    texts: Iterable[str | Sequence[int]],
    tokenizer: Any,
    labels: Sequence[Any] | None = None,
    min_count: int = 2,
    max_words: int = 10_000,
) -> dict[str, Any]:
    """Fit word importance on training texts, for `ICPCConfig(text_scorer="importance", word_scores=...)`.

    `texts`: raw strings, or token-id sequences from `tokenizer` (what `dataset.map(tokenize)` gives). `labels`:
    one class per text, or None for inverse document frequency alone. Only the `max_words` least important words
    seen in at least `min_count` texts are stored (rounded to 3 decimals); every other word is the most important.
    The vocabulary's fingerprint is stored too, so scores used with another tokenizer fail with the fix.
    """
    if not isinstance(min_count, int) or min_count < 1 or not isinstance(max_words, int) or max_words < 1:
        raise ValueError(f"`min_count` and `max_words` must be positive integers, got {min_count!r}, {max_words!r}.")
    vocabulary = token_vocabulary(tokenizer)
    documents = []
    for text in texts:
        if isinstance(text, str):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = text.tolist() if hasattr(text, "tolist") else list(text)
        ids = np.asarray(ids, dtype=np.int64)
        documents.append({w.lower() for w in word_texts(ids, vocabulary.word_index(ids), vocabulary) if w})
    if not documents:
        raise ValueError(
            "Word importance was fitted on no texts: pass the training texts (or their token ids), e.g. "
            "`fit_word_scores(train['text'], tokenizer, train['label'])`."
        )
    classes = _class_index(labels, len(documents))
    frequency: Counter[str] = Counter()
    per_class: dict[str, Counter[int]] = defaultdict(Counter)
    for index, words in enumerate(documents):
        frequency.update(words)
        if classes is not None:
            for word in words:
                per_class[word][classes[index]] += 1
    total = len(documents)
    priors = np.bincount(classes) / total if classes is not None else None
    scores = {}
    for word, count in frequency.items():
        if count < min_count or is_protected(word):
            continue
        idf = math.log((1 + total) / (1 + count)) + 1.0
        lift = 0.0
        if priors is not None:  # P(class | word), smoothed by one pseudo-text per class spread as the priors
            smoothing = len(priors)
            for label, hits in per_class[word].items():
                posterior = (hits + smoothing * priors[label]) / (count + smoothing)
                lift = max(lift, math.log(posterior / priors[label]))
        scores[word] = round(idf * (1.0 + lift), 3)
    kept = sorted(scores.items(), key=lambda item: (item[1], item[0]))[:max_words]
    return {"vocabulary": vocabulary.fingerprint, "texts": total, "words": dict(kept)}


# ---------------------------------------------------------------------------------------------- inside a Trainer
def _samples(dataset: Any, limit: int) -> list[dict[str, Any]]:
    """The first `limit` samples of a dataset or stream, columns read at once for a datasets.Dataset."""
    columns = getattr(dataset, "column_names", None)
    if columns is not None and hasattr(dataset, "__len__"):
        wanted = [c for c in ("input_ids", "text", "text_pair", "label", "labels") if c in columns]
        table = dataset.with_format(None).select_columns(wanted)[: min(limit, len(dataset))]
        return [dict(zip(table, row)) for row in zip(*table.values())]
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        return [dataset[i] for i in range(min(limit, len(dataset)))]
    return list(itertools.islice(iter(dataset), limit))


def _settings_in(train_dataloader: Any) -> list[Any]:
    """The ICPC settings of the collator(s) inside the train DataLoader's collate function."""
    collate = getattr(getattr(train_dataloader, "base_dataloader", train_dataloader), "collate_fn", None)
    found = []
    for _ in range(4):  # LevelledCollate and Trainer's RemoveColumnsCollator wrap the user's collator
        if hasattr(collate, "icpc") and hasattr(collate.icpc, "word_scores"):
            found.append(collate.icpc)
        collate = getattr(collate, "collate_fn", None) or getattr(collate, "data_collator", None)
    return found


def fit_for_training(model: Any, train_dataloader: Any, tokenizer: Any, limit: int = FIT_SAMPLE) -> None:
    """ICPCCallback, text models: fit word scores on the train dataset when the importance scorer (asked for, or the
    default `text_scorer=None`) has none, and store them with `text_scorer="importance"` in the model's settings (so
    `save_pretrained` and the pipeline have them) and in the data collator's."""
    base = base_model_of(model)
    if registration_for(icpc_settings(model).model_type).modality.name != "text":
        return
    settings = [icpc_settings(model), *_settings_in(train_dataloader)]
    waiting = [s for s in settings if s.text_scorer in (None, "importance") and s.word_scores is None]
    if not waiting:
        return
    samples = _samples(getattr(train_dataloader, "base_dataloader", train_dataloader).dataset, limit)
    texts = []
    for sample in samples:
        if "input_ids" in sample:
            texts.append(sample["input_ids"])
        elif "text" in sample:
            texts.append(tokenizer(sample["text"], sample.get("text_pair"))["input_ids"])
        else:
            raise ValueError(
                f"ICPCCallback fits the importance scorer on the training texts, but the samples hold {sorted(sample)}: "
                "give them `input_ids` or `text`, or fit the scores yourself (`ICPCConfig(text_scorer='importance', "
                "word_scores=icpc_hf.fit_word_scores(...))`)."
            )
    key = next((k for k in ("label", "labels") if samples and all(k in s for s in samples)), None)
    labels = [s[key] for s in samples] if key else None
    try:
        _class_index(labels, len(texts))
    except ValueError:
        logger.info("The training labels are not one class per text: word importance is fitted on IDF alone.")
        labels = None
    scores = fit_word_scores(texts, tokenizer, labels)
    for icpc in waiting:
        icpc.word_scores, icpc.text_scorer = scores, "importance"
    base.config.icpc = icpc_settings(model).to_dict()


__all__ = ["fit_word_scores", "fit_for_training"]
