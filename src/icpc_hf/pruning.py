"""Which words text pruning removes: the stop words, a tokenizer's word boundaries, and the reproducible choice
of the insignificant words a level drops. No model and no batch here: `text.py` builds batches from these.
"""

from __future__ import annotations

import math
import unicodedata
import weakref
import zlib
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np

# Negations ("no", "not", "nor", the stems BERT splits off "n't") are left out: they flip a text's meaning.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could d did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just ll m ma me more most my myself now o
    of off on once only or other our ours ourselves out over own re s same she should so some such t than that
    the their theirs them themselves then there these they this those through to too under until up ve very was
    we were what when where which while who whom why will with would y you your yours yourself yourselves""".split()
)

_WORD_START_MARKERS = ("\u0120", "\u2581")  # byte-level BPE's "Ġ", SentencePiece's "▁"


def is_punctuation(word: str) -> bool:
    """True for a word made only of punctuation or symbols (",", "--", "$", "...")."""
    return bool(word) and all(unicodedata.category(ch)[0] in "PS" for ch in word)


def _char_class(text: str, index: int) -> int:
    if not text:
        return -1
    ch = text[index]
    return 0 if ch.isalpha() else 1 if ch.isdigit() else 2


class TokenVocabulary:
    """What pruning needs to know about every token id of a tokenizer: special or not, where words start, text.

    Word boundaries come from the tokenizer's sub-word markers: WordPiece continuation pieces start with its
    prefix ("##"), which gives exactly the fast tokenizer's `word_ids`; byte-level BPE and SentencePiece pieces
    that start a word carry "Ġ" or "▁" (in byte-level BPE a change between letters, digits and symbols also
    starts one, as its pre-tokenizer splits there). Works for slow tokenizers as well: it only reads the vocabulary.
    """

    def __init__(self, tokenizer: Any):
        size = len(tokenizer)
        pieces = [p if isinstance(p, str) else "" for p in tokenizer.convert_ids_to_tokens(list(range(size)))]
        self.size = size
        self.fingerprint = f"{size}-{zlib.crc32(chr(10).join(pieces).encode('utf-8')):08x}"
        """Identifies the vocabulary (size and every piece), so fitted word scores can be matched to a tokenizer."""
        self.special = np.zeros(size, dtype=bool)
        special_ids = set(getattr(tokenizer, "all_special_ids", [])) - {getattr(tokenizer, "unk_token_id", None)}
        self.special[[i for i in special_ids if i is not None and 0 <= i < size]] = True
        self.prefix, self.marker = self._convention(tokenizer, pieces)
        if self.prefix:
            self.continues = np.array([p.startswith(self.prefix) for p in pieces], dtype=bool)
            self.text = [p[len(self.prefix) :] if c else p for p, c in zip(pieces, self.continues)]
        else:
            self.continues = np.array([not p.startswith(self.marker) for p in pieces], dtype=bool)
            self.text = [p.lstrip(self.marker) for p in pieces]
        self.first_class = np.array([_char_class(t, 0) for t in self.text])
        self.last_class = np.array([_char_class(t, -1) for t in self.text])

    @staticmethod
    def _convention(tokenizer: Any, pieces: list[str]) -> tuple[str | None, str | None]:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        prefix = getattr(getattr(backend, "model", None), "continuing_subword_prefix", None)
        if prefix:
            return prefix, None
        pre_tokenizer = repr(getattr(backend, "pre_tokenizer", None))
        for name, marker in (("ByteLevel", _WORD_START_MARKERS[0]), ("Metaspace", _WORD_START_MARKERS[1])):
            if name in pre_tokenizer:
                return None, marker
        share = lambda start: sum(p.startswith(start) for p in pieces) / max(1, len(pieces))  # noqa: E731
        for marker in _WORD_START_MARKERS:
            if share(marker) > 0.05:
                return None, marker
        if share("##") > 0.05:
            return "##", None
        raise ValueError(
            f"Cannot tell where words start in the tokens of {type(tokenizer).__name__} (no '##' continuation "
            "prefix, no 'Ġ' or '▁' word markers): pass features with `word_ids` (from a fast tokenizer's "
            "`encoding.word_ids()`) or raw `text` with a fast tokenizer (`AutoTokenizer.from_pretrained(..., "
            "use_fast=True)`)."
        )

    def word_index(self, ids: np.ndarray) -> np.ndarray:
        """Word number of each token (-1 for special tokens)."""
        special = self.special[ids]
        continues = self.continues[ids].copy()
        if self.marker == _WORD_START_MARKERS[0]:  # byte-level BPE also splits letters, digits and symbols apart
            previous = np.concatenate(([-1], self.last_class[ids][:-1]))
            continues &= (self.first_class[ids] == previous) | (previous == -1)  # -1: a bare "Ġ" before it
        after_special = np.concatenate(([True], special[:-1]))
        starts = ~special & (~continues | after_special)
        words = np.cumsum(starts) - 1
        words[special] = -1
        return words


_VOCABULARIES: weakref.WeakKeyDictionary[Any, TokenVocabulary] = weakref.WeakKeyDictionary()


def token_vocabulary(tokenizer: Any) -> TokenVocabulary:
    """The tokenizer's TokenVocabulary, built once per tokenizer."""
    if tokenizer is None:
        raise ValueError("Pruning text needs the tokenizer: pass it to ICPCDataCollator(tokenizer, icpc).")
    try:
        vocabulary = _VOCABULARIES.get(tokenizer)
    except TypeError:
        return TokenVocabulary(tokenizer)
    if vocabulary is None or vocabulary.size != len(tokenizer):
        vocabulary = _VOCABULARIES[tokenizer] = TokenVocabulary(tokenizer)
    return vocabulary


def word_texts(ids: np.ndarray, words: np.ndarray, vocabulary: TokenVocabulary) -> list[str]:
    """The text of each word of a sequence, its pieces joined without sub-word markers."""
    texts = [""] * (int(words.max()) + 1 if len(words) else 0)
    for token, word in zip(ids.tolist(), words.tolist()):
        if word >= 0:
            texts[word] += vocabulary.text[token]
    return texts


@lru_cache(maxsize=8)
def _stop_set(stop_words: tuple[str, ...] | None) -> frozenset[str]:
    return STOP_WORDS if stop_words is None else frozenset(w.lower() for w in stop_words)


class StopWordScorer:
    """The default text scorer: a level is the share of the insignificant words (stop words, punctuation) kept,
    and which of them go is drawn uniformly."""

    def __init__(self, stop_words: frozenset[str]):
        self.stop_words = stop_words

    def droppable(self, texts: list[str], level: float) -> tuple[np.ndarray, int]:
        """The words that may be removed and how many of them `level` removes."""
        insignificant = [w for w, text in enumerate(texts) if text.lower() in self.stop_words or is_punctuation(text)]
        return np.asarray(insignificant, dtype=np.int64), int(math.floor((1.0 - level) * len(insignificant) + 0.5))

    def choose(self, texts: list[str], droppable: np.ndarray, count: int, rng: Any, training: bool) -> np.ndarray:
        return rng.choice(droppable, size=count, replace=False)


def kept_token_indices(
    ids: np.ndarray,
    words: np.ndarray,
    vocabulary: TokenVocabulary,
    scorer: Any,
    level: float,
    seed: int,
    training: bool = False,
) -> np.ndarray:
    """Indices of the tokens of one sequence that survive pruning at `level` (all of them at 1.0).

    `scorer` (StopWordScorer, or word_importance.ImportanceScorer) says which words may go, how many go at `level`
    and which; its draw comes from (seed, the sequence's token ids, level), so a sample collated twice at one level
    is pruned the same way, on any process. `training` lets a scorer draw where inference must be exact.
    """
    everything = np.arange(len(ids))
    texts = word_texts(ids, words, vocabulary) if level < 1.0 else []
    word_count = len(texts)
    if word_count < 2:
        return everything
    droppable, remove_count = scorer.droppable(texts, level)
    remove_count = min(remove_count, len(droppable), word_count - 1)
    if remove_count <= 0:
        return everything
    digest = zlib.crc32(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    rng = np.random.default_rng([seed % 2**32, digest, int(round(level * 1_000_000))])
    removed = scorer.choose(texts, droppable, remove_count, rng, training)
    return everything[~np.isin(words, removed)]


def low_idf_words(texts: Iterable[str], tokenizer: Any, count: int = 50, with_stop_words: bool = True) -> list[str]:
    """Words that occur in the most training texts (lowest inverse document frequency), for `ICPCConfig.stop_words`.

    Returns the `count` most widespread words (punctuation is always insignificant and not listed), plus the
    built-in stop words unless `with_stop_words=False`. Words are the tokenizer's, so they match what pruning sees.
    """
    vocabulary = token_vocabulary(tokenizer)
    frequency: Counter[str] = Counter()
    for text in texts:
        ids = np.asarray(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=np.int64)
        found = word_texts(ids, vocabulary.word_index(ids), vocabulary)
        frequency.update({w.lower() for w in found if w and not is_punctuation(w)})
    widespread = [word for word, _ in sorted(frequency.items(), key=lambda item: (-item[1], item[0]))[:count]]
    return sorted(set(widespread) | (STOP_WORDS if with_stop_words else set()))
