"""Text as token sequences within the model's positions: its sizes (`TextGeometry`), raw texts tokenized, and
tokenized features read back and checked against the model's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import ICPCConfig
from .geometry import Geometry
from .modality import as_tensor


@dataclass(frozen=True, kw_only=True)
class TextGeometry(Geometry):
    max_position_embeddings: int
    vocab_size: int
    pad_token_id: int | None
    type_vocab_size: int
    """0 for models without token types (DistilBERT, ModernBERT)."""
    position_offset: int = 0
    """Where positions start: `pad_token_id + 1` for RoBERTa-style tables, 0 otherwise (set by the patch)."""

    @property
    def max_tokens(self) -> int:
        """The longest text the positions allow."""
        return self.max_position_embeddings - self.position_offset


def max_tokens(tokenizer: Any, icpc: ICPCConfig) -> int:
    limit = TextGeometry.from_dict(icpc.geometry).max_tokens
    model_max = getattr(tokenizer, "model_max_length", None)
    return min(limit, int(model_max)) if model_max and model_max < 1_000_000 else limit


def sequence(tokenizer: Any, feature: dict[str, Any], icpc: ICPCConfig) -> dict[str, np.ndarray | None]:
    """One unpadded sequence: token ids, token types and (when known) word numbers."""
    limit = max_tokens(tokenizer, icpc)
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
        if len(ids) > limit:
            raise ValueError(
                f"A sequence of {len(ids)} tokens is longer than the model's {limit} positions: tokenize "
                f"with `truncation=True, max_length={limit}`."
            )
        return {"ids": ids, "types": types, "words": words}
    if "text" in feature:
        encoded = encode(tokenizer, feature["text"], feature.get("text_pair"), icpc)
        return {k: None if v is None else np.asarray(v, dtype=np.int64) for k, v in encoded.items()}
    raise ValueError(
        f"Text features need `input_ids` (from the tokenizer) or a raw `text`; got keys {sorted(feature)}."
    )


def encode(tokenizer: Any, text: Any, text_pair: Any, icpc: ICPCConfig) -> dict[str, list[int] | None]:
    """Tokenize a raw text (or pair), truncated to the model's positions, with word numbers when available."""
    if tokenizer is None:
        raise ValueError("Features hold raw `text` but the collator has no tokenizer to tokenize it.")
    for name, value in (("text", text), ("text_pair", text_pair)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"`{name}` must be a string, got {type(value).__name__}.")
    encoding = tokenizer(text, text_pair, truncation=True, max_length=max_tokens(tokenizer, icpc))
    words = None
    if getattr(tokenizer, "is_fast", False):
        words = [-1 if w is None else w for w in encoding.word_ids()]
        if text_pair is not None:  # word numbers restart in the second text: shift them after the first
            sequence = encoding.sequence_ids()
            first = 1 + max([w for w, s in zip(words, sequence) if s == 0], default=-1)
            words = [w + first if s == 1 and w >= 0 else w for w, s in zip(words, sequence)]
    return {"ids": encoding["input_ids"], "types": encoding.get("token_type_ids"), "words": words}


def check_ids(sequences: list[dict], tokenizer: Any, geometry: TextGeometry) -> None:
    """A tokenizer that does not match the model fails here with the fix, not as an index error in torch."""
    vocab_size = geometry.vocab_size
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
        type_count = geometry.type_vocab_size
        if types is not None and type_count and len(types) and types.max() >= type_count:
            raise ValueError(
                f"Token type {int(types.max())} is outside the model's {geometry.type_vocab_size} token types: "
                "the tokenizer does not match the model."
            )
