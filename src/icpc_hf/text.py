"""Text: insignificant word pruning. A level is the fraction of a text's insignificant words kept.

Whole words (every sub-word piece together) are removed among the insignificant ones: stop words and
punctuation by default. Special tokens are never removed, a text keeps at least one word, and every kept token
keeps its original position id, which the batch carries as `position_ids` (BERT-family models take them
natively; RoBERTa-style models count positions from `padding_idx + 1`, which `position_offset` accounts for).
"""

from __future__ import annotations

import math
import unicodedata
import weakref
import zlib
from collections import Counter
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .config import ICPCConfig
from .modality import Modality, as_tensor, with_labels

# Negations ("no", "not", "nor", the stems BERT splits off "n't") are left out: they flip a text's meaning.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could d did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just ll m ma me more most my myself now o
    of off on once only or other our ours ourselves out over own re s same she should so some such t than that
    the their theirs them themselves then there these they this those through to too under until up ve very was
    we were what when where which while who whom why will with would y you your yours yourself yourselves""".split()
)

# Models that count positions from `pad_token_id + 1` (and give padding the position `pad_token_id`).
PADDING_OFFSET_MODEL_TYPES = ("roberta", "xlm-roberta", "camembert")
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


_VOCABULARIES: "weakref.WeakKeyDictionary[Any, TokenVocabulary]" = weakref.WeakKeyDictionary()


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


def kept_token_indices(
    ids: np.ndarray,
    words: np.ndarray,
    vocabulary: TokenVocabulary,
    stop_words: frozenset[str],
    level: float,
    seed: int,
) -> np.ndarray:
    """Indices of the tokens of one sequence that survive pruning at `level` (all of them at 1.0).

    Which insignificant words go is drawn from (seed, the sequence's token ids, level), so a sample collated
    twice at one level is pruned the same way, on any process.
    """
    everything = np.arange(len(ids))
    texts = word_texts(ids, words, vocabulary) if level < 1.0 else []
    word_count = len(texts)
    if word_count < 2:
        return everything
    insignificant = [w for w, text in enumerate(texts) if text.lower() in stop_words or is_punctuation(text)]
    remove_count = min(int(math.floor((1.0 - level) * len(insignificant) + 0.5)), word_count - 1)
    if remove_count <= 0:
        return everything
    digest = zlib.crc32(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    rng = np.random.default_rng([seed % 2**32, digest, int(round(level * 1_000_000))])
    removed = rng.choice(np.asarray(insignificant), size=remove_count, replace=False)
    return everything[~np.isin(words, removed)]


def low_idf_words(
    texts: Iterable[str], tokenizer: Any, count: int = 50, with_stop_words: bool = True
) -> list[str]:
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


class TextModality(Modality):
    name = "text"
    task = "icpc-text-classification"
    default_levels = (0.5, 0.75, 1.0)

    def resolve(self, icpc: ICPCConfig, model_config: Any) -> None:
        max_positions = getattr(model_config, "max_position_embeddings", None)
        vocab_size = getattr(model_config, "vocab_size", None)
        if not max_positions or not vocab_size:
            raise ValueError(
                f"This {model_config.model_type} config has no `max_position_embeddings`/`vocab_size`: icpc_hf "
                "text pruning needs a model with an absolute position table."
            )
        pad_token_id = getattr(model_config, "pad_token_id", None)
        offset = (pad_token_id or 0) + 1 if model_config.model_type in PADDING_OFFSET_MODEL_TYPES else 0
        icpc.geometry = {
            "max_position_embeddings": int(max_positions),
            "vocab_size": int(vocab_size),
            "pad_token_id": pad_token_id,
            "type_vocab_size": int(getattr(model_config, "type_vocab_size", 0) or 0),
            "position_offset": offset,
            "max_tokens": int(max_positions) - offset,
        }
        if icpc.axes is not None:
            raise ValueError("Text is pruned word by word and has no axes: leave `axes` as None for text models.")
        if icpc.stop_words is not None and (
            isinstance(icpc.stop_words, str) or not all(isinstance(w, str) for w in icpc.stop_words)
        ):
            raise TypeError(
                f"`stop_words` must be a list of words, got {icpc.stop_words!r}; use [] to prune punctuation only."
            )
        if icpc.levels is None:
            icpc.levels = sorted({icpc.min_level, *(lv for lv in self.default_levels if lv >= icpc.min_level)})
            if icpc.level_weights is not None and len(icpc.level_weights) != len(icpc.levels):
                raise ValueError(
                    f"`level_weights` has {len(icpc.level_weights)} entries but the derived levels are "
                    f"{icpc.levels}: give `levels` explicitly with one weight each."
                )
        if icpc.cascade_levels is None:
            # Pruning saves at most the share of insignificant words, so one cheap pass before the full one.
            icpc.cascade_levels = sorted({min(icpc.levels), 1.0})

    # ------------------------------------------------------------------ features -> sequences
    @staticmethod
    def max_tokens(tokenizer: Any, icpc: ICPCConfig) -> int:
        limit = icpc.geometry["max_tokens"]
        model_max = getattr(tokenizer, "model_max_length", None)
        return min(limit, int(model_max)) if model_max and model_max < 1_000_000 else limit

    def _sequence(self, tokenizer: Any, feature: dict[str, Any], icpc: ICPCConfig) -> dict[str, np.ndarray | None]:
        """One unpadded sequence: token ids, token types and (when known) word numbers."""
        max_tokens = self.max_tokens(tokenizer, icpc)
        if "input_ids" in feature:
            ids = as_tensor(feature["input_ids"])
            if ids.is_floating_point() or ids.is_complex():
                raise ValueError(
                    f"`input_ids` must be integer token ids from the tokenizer, got {ids.dtype} values: tokenize "
                    "the text (or pass it raw under `text`) instead of converting ids to floats."
                )
            ids = np.asarray(ids.tolist(), dtype=np.int64)
            if ids.ndim != 1:
                raise ValueError(
                    f"Each feature's `input_ids` must be one sequence, got shape {ids.shape}: tokenize one text "
                    "(or one pair) per feature."
                )
            types = feature.get("token_type_ids")
            types = None if types is None else np.asarray(as_tensor(types).tolist(), dtype=np.int64)
            word_ids = feature.get("word_ids")
            words = None if word_ids is None else np.array([-1 if w is None else w for w in word_ids], dtype=np.int64)
            mask = feature.get("attention_mask")
            if mask is not None:  # features padded beforehand: drop their padding
                keep = np.asarray(as_tensor(mask).tolist(), dtype=bool)
                ids, types = ids[keep], None if types is None else types[keep]
                words = None if words is None else words[keep]
            if len(ids) > max_tokens:
                raise ValueError(
                    f"A sequence of {len(ids)} tokens is longer than the model's {max_tokens} positions: tokenize "
                    f"with `truncation=True, max_length={max_tokens}`."
                )
            return {"ids": ids, "types": types, "words": words}
        if "text" in feature:
            encoded = self.encode(tokenizer, feature["text"], feature.get("text_pair"), icpc)
            return {k: None if v is None else np.asarray(v, dtype=np.int64) for k, v in encoded.items()}
        raise ValueError(
            f"Text features need `input_ids` (from the tokenizer) or a raw `text`; got keys {sorted(feature)}."
        )

    def encode(self, tokenizer: Any, text: Any, text_pair: Any, icpc: ICPCConfig) -> dict[str, list[int] | None]:
        """Tokenize a raw text (or pair), truncated to the model's positions, with word numbers when available."""
        if tokenizer is None:
            raise ValueError("Features hold raw `text` but the collator has no tokenizer to tokenize it.")
        for name, value in (("text", text), ("text_pair", text_pair)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"`{name}` must be a string, got {type(value).__name__}.")
        encoding = tokenizer(text, text_pair, truncation=True, max_length=self.max_tokens(tokenizer, icpc))
        words = None
        if getattr(tokenizer, "is_fast", False):
            words = [-1 if w is None else w for w in encoding.word_ids()]
            if text_pair is not None:  # word numbers restart in the second text: shift them after the first
                sequence = encoding.sequence_ids()
                first = 1 + max([w for w, s in zip(words, sequence) if s == 0], default=-1)
                words = [w + first if s == 1 and w >= 0 else w for w, s in zip(words, sequence)]
        return {"ids": encoding["input_ids"], "types": encoding.get("token_type_ids"), "words": words}

    # ------------------------------------------------------------------ batches
    def collate(self, processor: Any, features: Sequence[dict[str, Any]], level: float, icpc: ICPCConfig) -> dict:
        geometry = icpc.geometry
        sequences = [self._sequence(processor, feature, icpc) for feature in features]
        self._check_ids(sequences, processor, geometry)
        if level < 1.0:
            vocabulary = token_vocabulary(processor)
            stop_words = _stop_set(None if icpc.stop_words is None else tuple(icpc.stop_words))
            for seq in sequences:
                words = seq["words"] if seq["words"] is not None else vocabulary.word_index(seq["ids"])
                seq["positions"] = kept_token_indices(seq["ids"], words, vocabulary, stop_words, level, icpc.seed)
        length = max(len(seq.get("positions", seq["ids"])) for seq in sequences)
        count = len(sequences)
        pad_id = getattr(processor, "pad_token_id", None)
        pad_id = pad_id if pad_id is not None else (geometry["pad_token_id"] or 0)
        offset = geometry["position_offset"]
        input_ids = torch.full((count, length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((count, length), dtype=torch.long)
        token_type_ids = torch.zeros((count, length), dtype=torch.long)
        # Padding gets what the unpatched model would give it, so a level-1.0 batch is the unpatched model's own.
        if offset:
            position_ids = torch.full((count, length), geometry["pad_token_id"] or 0, dtype=torch.long)
        else:
            position_ids = torch.arange(length).repeat(count, 1)
        for row, seq in enumerate(sequences):
            kept = seq.get("positions", np.arange(len(seq["ids"])))
            size = len(kept)
            input_ids[row, :size] = torch.from_numpy(seq["ids"][kept])
            attention_mask[row, :size] = 1
            position_ids[row, :size] = torch.from_numpy(kept) + offset
            if seq["types"] is not None:
                token_type_ids[row, :size] = torch.from_numpy(seq["types"][kept])
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if geometry["type_vocab_size"]:  # DistilBERT takes no token types
            batch["token_type_ids"] = token_type_ids
        batch["position_ids"] = position_ids
        return with_labels(batch, features)

    @staticmethod
    def _check_ids(sequences: list[dict], tokenizer: Any, geometry: dict[str, Any]) -> None:
        """A tokenizer that does not match the model fails here with the fix, not as an index error in torch."""
        vocab_size = geometry["vocab_size"]
        for seq in sequences:
            ids = seq["ids"]
            if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
                bad = int(ids.max() if ids.max() >= vocab_size else ids.min())
                size = len(tokenizer) if tokenizer is not None else "?"
                raise ValueError(
                    f"Token id {bad} is outside the model's vocabulary of {vocab_size}: the tokenizer "
                    f"({type(tokenizer).__name__}, {size} tokens) does not match the model. Use the model's own "
                    "tokenizer, or call `model.resize_token_embeddings(len(tokenizer))` after adding tokens."
                )
            types = seq["types"]
            type_count = geometry["type_vocab_size"]
            if types is not None and type_count and len(types) and types.max() >= type_count:
                raise ValueError(
                    f"Token type {int(types.max())} is outside the model's {geometry['type_vocab_size']} token types: "
                    "the tokenizer does not match the model."
                )

    def _real_positions(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        offset = icpc.geometry["position_offset"]
        return torch.where(batch["attention_mask"].bool(), batch["position_ids"] - offset, -1)

    def tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        return batch["attention_mask"].sum(-1)

    def full_tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        """The unpruned length, read from the last kept position: exact when texts end with a special token ([SEP])."""
        return self._real_positions(batch, icpc).max(-1).values + 1

    # ------------------------------------------------------------------ pipeline
    def prepare(self, processor: Any, raw: Any, icpc: ICPCConfig) -> dict[str, Any]:
        if isinstance(raw, dict):
            unknown = set(raw) - {"text", "text_pair"}
            if "text" not in raw or unknown:
                raise ValueError(f"A text pair is given as {{'text': ..., 'text_pair': ...}}; got keys {sorted(raw)}.")
            text, pair = raw["text"], raw.get("text_pair")
        else:
            text, pair = raw, None
        encoded = self.encode(processor, text, pair, icpc)
        feature = {"input_ids": encoded["ids"]}
        if encoded["types"] is not None:
            feature["token_type_ids"] = encoded["types"]
        if encoded["words"] is not None:
            feature["word_ids"] = [None if w < 0 else w for w in encoded["words"]]
        return feature

    def processor_of(self, pipeline: Any) -> Any:
        return pipeline.tokenizer
