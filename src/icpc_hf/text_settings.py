"""The text fields of the settings (`text_scorer`, `stop_words`, `word_scores`), checked by the text modality as it
resolves the settings for a model: only text reads them, and a text model's served folder checks them too."""

from __future__ import annotations

import math

from .config import ICPCConfig

TEXT_SCORERS = ("stop_words", "importance")


def check_text_fields(icpc: ICPCConfig) -> None:
    """The scorer, resolved from what is given when left as None, and stop words and word scores it can use."""
    if icpc.stop_words is not None and (
        isinstance(icpc.stop_words, str) or not all(isinstance(w, str) for w in icpc.stop_words)
    ):
        raise TypeError(
            f"`stop_words` must be a list of words, got {icpc.stop_words!r}; use [] to prune punctuation only."
        )
    if icpc.text_scorer is None and icpc.word_scores is not None:
        icpc.text_scorer = "importance"
    elif icpc.text_scorer is None and icpc.stop_words is not None:
        icpc.text_scorer = "stop_words"
    if icpc.text_scorer is not None and icpc.text_scorer not in TEXT_SCORERS:
        raise ValueError(f"Unknown `text_scorer` {icpc.text_scorer!r}: use one of {', '.join(TEXT_SCORERS)}.")
    if icpc.text_scorer == "importance" and icpc.stop_words is not None:
        raise ValueError(
            "`stop_words` are the `stop_words` scorer's list and the `importance` scorer ranks every word: drop "
            "`stop_words`, or use `text_scorer='stop_words'`."
        )
    if icpc.word_scores is None:
        return
    if icpc.text_scorer != "importance":
        raise ValueError(
            "`word_scores` are used by the importance scorer only: set `text_scorer='importance'`, or drop them."
        )
    words = icpc.word_scores.get("words") if isinstance(icpc.word_scores, dict) else None
    if (
        not isinstance(words, dict)
        or not isinstance(icpc.word_scores.get("vocabulary"), str)
        or not all(isinstance(k, str) and isinstance(v, (int, float)) and math.isfinite(v) for k, v in words.items())
    ):
        raise ValueError(
            "`word_scores` must be what `icpc_hf.fit_word_scores(train_texts, tokenizer, labels)` returns "
            "(the tokenizer's `vocabulary` fingerprint and finite `words` scores): fit them again."
        )
