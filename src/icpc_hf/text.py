"""Text: insignificant word pruning. A level is the fraction of a text's insignificant words kept (the default
`stop_words` scorer; with `ICPCConfig(text_scorer="importance")` it is the fraction of all words kept, see
word_importance.py).

Whole words (every sub-word piece together) are removed among the insignificant ones: stop words and
punctuation by default. Special tokens are never removed, a text keeps at least one word, and every kept token
keeps its original position id, which the batch carries as `position_ids` (BERT-family models take them
natively; RoBERTa-style models count positions from `padding_idx + 1`, which `position_offset` accounts for).

The text modality (BERT-style classifiers) in one module: the modality, its pipeline and its registration.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification
from transformers.models.albert.modeling_albert import AlbertEmbeddings
from transformers.models.bert.modeling_bert import BertEmbeddings
from transformers.models.camembert.modeling_camembert import CamembertEmbeddings
from transformers.models.distilbert.modeling_distilbert import Embeddings as DistilBertEmbeddings
from transformers.models.electra.modeling_electra import ElectraEmbeddings
from transformers.models.modernbert.modeling_modernbert import ModernBertEmbeddings
from transformers.models.roberta.modeling_roberta import RobertaEmbeddings
from transformers.models.xlm_roberta.modeling_xlm_roberta import XLMRobertaEmbeddings

from .config import CHECKS, TEXT_SCORERS, ICPCConfig
from .embeddings_bert import TextPositionsPatch
from .geometry import Geometry
from .modality import Modality, as_tensor
from .pipelines import ICPCPipeline
from .pruning import kept_token_indices, token_vocabulary
from .registry import Registration, register
from .word_importance import scorer_for


def in_training_batch() -> bool:
    """True while LevelledCollate collates a training batch at its drawn level. training/schedule.py is training code
    that the served (Hub) copy does not ship, so it is looked up among the loaded modules rather than imported."""
    schedule = sys.modules.get(f"{__package__}.training.schedule")
    return schedule is not None and schedule.current_batch() is not None


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
        limit = TextGeometry.from_dict(icpc.geometry).max_tokens
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
        geometry = self.geo(icpc)
        sequences = [self._sequence(processor, feature, icpc) for feature in features]
        self._check_ids(sequences, processor, geometry)
        if level < 1.0:
            vocabulary = token_vocabulary(processor)
            scorer = scorer_for(icpc, vocabulary)
            training = in_training_batch()  # a training draw; inference and evaluation prune exactly
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

    @staticmethod
    def _check_ids(sequences: list[dict], tokenizer: Any, geometry: TextGeometry) -> None:
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
        encoded = self.encode(processor, text, pair, icpc)
        feature = {"input_ids": encoded["ids"]}
        if encoded["types"] is not None:
            feature["token_type_ids"] = encoded["types"]
        if encoded["words"] is not None:
            feature["word_ids"] = [None if w < 0 else w for w in encoded["words"]]
        return feature

    def processor_of(self, pipeline: Any) -> Any:
        return pipeline.tokenizer


def check_text_scorer(icpc: ICPCConfig) -> None:
    """The text fields (run through `config.CHECKS`): the scorer, and word scores the importance scorer can use."""
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
    if icpc.word_scores is not None:
        if icpc.text_scorer != "importance":
            raise ValueError(
                "`word_scores` are used by the importance scorer only: set `text_scorer='importance'`, or drop them."
            )
        words = icpc.word_scores.get("words") if isinstance(icpc.word_scores, dict) else None
        if (
            not isinstance(words, dict)
            or not isinstance(icpc.word_scores.get("vocabulary"), str)
            or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and math.isfinite(v) for k, v in words.items()
            )
        ):
            raise ValueError(
                "`word_scores` must be what `icpc_hf.fit_word_scores(train_texts, tokenizer, labels)` returns "
                "(the tokenizer's `vocabulary` fingerprint and finite `words` scores): fit them again."
            )


CHECKS.append(check_text_scorer)


class ICPCTextClassificationPipeline(ICPCPipeline):
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True


REGISTRATION = register(
    Registration(
        modality=TextModality(),
        patches={
            "bert": TextPositionsPatch(BertEmbeddings),
            "distilbert": TextPositionsPatch(DistilBertEmbeddings),
            "electra": TextPositionsPatch(ElectraEmbeddings),
            "albert": TextPositionsPatch(AlbertEmbeddings),
            "roberta": TextPositionsPatch(RobertaEmbeddings, offset_from_padding=True),
            "xlm-roberta": TextPositionsPatch(XLMRobertaEmbeddings, offset_from_padding=True),
            "camembert": TextPositionsPatch(CamembertEmbeddings, offset_from_padding=True),
            "modernbert": TextPositionsPatch(ModernBertEmbeddings, table=False),
        },
        pipeline_class=ICPCTextClassificationPipeline,
        auto_model=AutoModelForSequenceClassification,
        pipeline_tag="text-classification",
        processor_argument="tokenizer",
        classifier_description="text classifier",
        compression_description="insignificant words pruned",
    )
)
