"""Word importance for text pruning (`ICPCConfig(text_scorer="importance")`): a level is the share of ALL words
kept, and the words dropped are the least important ones, by scores fitted on the training texts
(`icpc_hf.fit_word_scores`, training/word_scores.py). A word without a score (never seen in training) is the most
important; negations and words with digits are never dropped.

Served code (the Hub export copies it): relative imports, numpy only, nothing used only in training.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .pruning import StopWordScorer, TokenVocabulary, _stop_set

NEGATIONS = frozenset(
    """no not nor never none nobody nothing neither nowhere cannot without ain aren couldn didn doesn don hadn hasn
    haven isn mightn mustn needn shan shouldn wasn weren won wouldn""".split()
)
"""Words that flip a text's meaning (with the stems BERT splits off "n't"): never dropped by the importance scorer."""

RANK_JITTER = 0.5
"""Training draw: a word's rank in its text (0 least, 1 most important) plus uniform noise of this width orders the
removals, so a word can be dropped before one up to half the ranking above it, and low ranks go far more often."""


def is_protected(word: str) -> bool:
    """Negations and numbers carry meaning that no frequency statistic sees: never dropped."""
    return word in NEGATIONS or any(ch.isdigit() for ch in word)


class ImportanceScorer:
    """A level is the share of a text's words kept; the least important go (exactly at inference, by a jittered
    ranking in training). Protected words count in the share but are never dropped, so a text made mostly of them
    keeps more than its level."""

    def __init__(self, word_scores: dict[str, Any]):
        self.scores = word_scores["words"]

    def droppable(self, texts: list[str], level: float) -> tuple[np.ndarray, int]:
        candidates = [w for w, text in enumerate(texts) if not is_protected(text.lower())]
        return np.asarray(candidates, dtype=np.int64), int(math.floor((1.0 - level) * len(texts) + 0.5))

    def choose(self, texts: list[str], droppable: np.ndarray, count: int, rng: Any, training: bool) -> np.ndarray:
        importance = np.array([self.scores.get(texts[w].lower(), math.inf) for w in droppable])
        ordered = np.sort(importance)  # ties share their mean rank, so the training jitter breaks them at random
        rank = (np.searchsorted(ordered, importance, "left") + np.searchsorted(ordered, importance, "right") - 1) / 2
        keys = rank / max(1, len(droppable) - 1)
        if training:
            keys = keys + rng.uniform(0.0, RANK_JITTER, size=len(keys))
        return droppable[np.argsort(keys, kind="stable")[:count]]


def scorer_for(icpc: Any, vocabulary: TokenVocabulary) -> Any:
    """The scorer `icpc.text_scorer` names (None: stop words), checked against the tokenizer's vocabulary."""
    if icpc.text_scorer in (None, "stop_words"):
        return StopWordScorer(_stop_set(None if icpc.stop_words is None else tuple(icpc.stop_words)))
    if icpc.word_scores is None:
        raise ValueError(
            "`text_scorer='importance'` needs word scores fitted on the training texts: train with ICPCCallback (it "
            "fits them on the train dataset), or pass `ICPCConfig(text_scorer='importance', "
            "word_scores=icpc_hf.fit_word_scores(train_texts, tokenizer, train_labels))`."
        )
    if icpc.word_scores["vocabulary"] != vocabulary.fingerprint:
        raise ValueError(
            f"The word scores were fitted with another tokenizer (vocabulary {icpc.word_scores['vocabulary']}, this "
            f"one is {vocabulary.fingerprint}): use the tokenizer they were fitted with, or fit them again with "
            "`icpc_hf.fit_word_scores(train_texts, tokenizer, train_labels)`."
        )
    return ImportanceScorer(icpc.word_scores)


__all__ = ["NEGATIONS", "ImportanceScorer", "is_protected", "scorer_for"]
