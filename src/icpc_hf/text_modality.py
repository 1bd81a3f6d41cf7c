"""Text: insignificant word pruning. A level is the fraction of a text's insignificant words kept (the default
`stop_words` scorer; with `ICPCConfig(text_scorer="importance")` it is the fraction of all words kept, see
word_importance.py).

Whole words (every sub-word piece together) are removed among the insignificant ones: stop words and
punctuation by default. Special tokens are never removed, a text keeps at least one word, and every kept token
keeps its original position id, which the batch carries as `position_ids` (BERT-family models take them
natively; RoBERTa-style models count positions from `padding_idx + 1`, which `position_offset` accounts for).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .config import ICPCConfig
from .drawn_level import current_batch
from .modality import Modality
from .pruning import kept_token_indices, token_vocabulary
from .text_settings import check_text_fields
from .text_tokens import TextGeometry, check_ids, encode, sequence
from .word_importance import scorer_for


class TextModality(Modality):
    name = "text"
    pads_to_the_longest = True
    geometry_class = TextGeometry
    task = "icpc-text-classification"
    default_levels = (0.5, 0.75, 1.0)

    def default_schedule(self, icpc: ICPCConfig) -> str:
        """`constant` for importance pruning (the second text round's choice); stop words keep their `progressive`."""
        return "progressive" if icpc.text_scorer == "stop_words" else "constant"

    def resolve(self, icpc: ICPCConfig, model_config: Any) -> None:
        check_text_fields(icpc)
        max_positions = getattr(model_config, "max_position_embeddings", None)
        vocab_size = getattr(model_config, "vocab_size", None)
        if not max_positions or not vocab_size:
            raise ValueError(
                f"This {model_config.model_type} config has no `max_position_embeddings`/`vocab_size`: icpc_hf "
                "text pruning needs a model with an absolute position table."
            )
        icpc.geometry = TextGeometry(  # the patch adds where its positions start (`position_offset`)
            max_position_embeddings=int(max_positions),
            vocab_size=int(vocab_size),
            pad_token_id=getattr(model_config, "pad_token_id", None),
            type_vocab_size=int(getattr(model_config, "type_vocab_size", 0) or 0),
        ).to_dict()
        if icpc.axes is not None:
            raise ValueError("Text is pruned word by word and has no axes: leave `axes` as None for text models.")
        if icpc.levels is None:
            icpc.levels = sorted({icpc.min_level, *(lv for lv in self.default_levels if lv >= icpc.min_level)})
        if icpc.cascade_levels is None:
            # Pruning saves at most the share of insignificant words, so one cheap pass before the full one.
            icpc.cascade_levels = sorted({min(icpc.levels), 1.0})

    # ------------------------------------------------------------------ batches
    def collate(self, processor: Any, features: Sequence[dict[str, Any]], level: float, icpc: ICPCConfig) -> dict:
        geometry = self.geo(icpc)
        sequences = [sequence(processor, feature, icpc) for feature in features]
        check_ids(sequences, processor, geometry)
        if level < 1.0:
            vocabulary = token_vocabulary(processor)
            scorer = scorer_for(icpc, vocabulary)
            training = current_batch() is not None  # a training draw; inference and evaluation prune exactly
            for seq in sequences:
                words = seq["words"] if seq["words"] is not None else vocabulary.word_index(seq["ids"])
                seq["positions"] = kept_token_indices(seq["ids"], words, vocabulary, scorer, level, icpc.seed, training)
        length = max(len(seq.get("positions", seq["ids"])) for seq in sequences)
        count = len(sequences)
        pad_id = getattr(processor, "pad_token_id", None)
        pad_id = pad_id if pad_id is not None else (geometry.pad_token_id or 0)
        offset = geometry.position_offset
        input_ids = torch.full((count, length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((count, length), dtype=torch.long)
        token_type_ids = torch.zeros((count, length), dtype=torch.long)
        # Padding gets what the unpatched model would give it, so a level-1.0 batch is the unpatched model's own.
        if offset:
            position_ids = torch.full((count, length), geometry.pad_token_id or 0, dtype=torch.long)
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
        if geometry.type_vocab_size:  # DistilBERT takes no token types
            batch["token_type_ids"] = token_type_ids
        batch["position_ids"] = position_ids
        return batch

    def _real_positions(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        offset = self.geo(icpc).position_offset
        return torch.where(batch["attention_mask"].bool(), batch["position_ids"] - offset, -1)

    def tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        return batch["attention_mask"].sum(-1)

    def full_tokens(self, batch: dict[str, torch.Tensor], icpc: ICPCConfig) -> torch.Tensor:
        """The unpruned length, read from the last kept position: exact when texts end with a special token ([SEP]).
        A batch without `position_ids` is unpruned."""
        if "position_ids" not in batch:
            return self.tokens(batch, icpc)
        return self._real_positions(batch, icpc).max(-1).values + 1

    # ------------------------------------------------------------------ pipeline
    def prepare(self, processor: Any, raw: Any, icpc: ICPCConfig, limits: Any = None) -> dict[str, Any]:
        if isinstance(raw, dict):
            unknown = set(raw) - {"text", "text_pair"}
            if "text" not in raw or unknown:
                raise ValueError(f"A text pair is given as {{'text': ..., 'text_pair': ...}}; got keys {sorted(raw)}.")
            text, pair = raw["text"], raw.get("text_pair")
        else:
            text, pair = raw, None
        encoded = encode(processor, text, pair, icpc)
        feature = {"input_ids": encoded["ids"]}
        if encoded["types"] is not None:
            feature["token_type_ids"] = encoded["types"]
        if encoded["words"] is not None:
            feature["word_ids"] = [None if w < 0 else w for w in encoded["words"]]
        return feature

    def processor_of(self, pipeline: Any) -> Any:
        return pipeline.tokenizer
