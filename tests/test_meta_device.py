"""Patching models whose weights are on the meta device: `init_empty_weights`, `torch.device("meta")`, a model class
patched at construction and built by `from_pretrained` (which builds every model on meta first), `device_map` with
offloaded weights.

Nothing may read the weights before they exist, and a model patched before its weights are loaded must answer,
and save, as one patched after loading: the same outputs at full size and compressed, the same default position
strategy (`interpolate` for a table with a learned layout, `crop` for a fresh one).
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from accelerate import init_empty_weights
from helpers import tiny_vit
from test_image import learned_layout, tiny_dinov2
from transformers import DeiTConfig, DeiTForImageClassification

from icpc_hf import ICPCConfig, patch_model, unpatch_model
from icpc_hf.patching import icpc_settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LEVELS = [0.5, 1.0]


def tiny_deit():
    config = DeiTConfig(
        image_size=32,
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
    )
    return DeiTForImageClassification(config).eval()


MAKERS = {"vit": tiny_vit, "deit": tiny_deit, "dinov2": tiny_dinov2}
LAYOUTS = {"learned": "interpolate", "fresh": "crop"}
"""A table with a learned layout (a pretrained checkpoint) and a fresh one, and the strategy each resolves to."""
CONTEXTS = {"init_empty_weights": init_empty_weights, "torch_meta": lambda: torch.device("meta")}


def reference(model_type: str, layout: str) -> torch.nn.Module:
    model = MAKERS[model_type]()
    return learned_layout(model) if layout == "learned" else model


def patched_normally(reference_model: torch.nn.Module) -> torch.nn.Module:
    return patch_model(copy.deepcopy(reference_model), ICPCConfig(levels=LEVELS))


def embeddings(model: torch.nn.Module) -> torch.nn.Module:
    return model.base_model.embeddings


def assert_answers_as(model: torch.nn.Module, expected: torch.nn.Module) -> None:
    """Same logits at full size (32 px) and compressed (16 px, level 0.5), bit for bit."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for side in (32, 16):
            pixels = torch.randn(2, 3, side, side, generator=generator)
            assert torch.equal(model(pixel_values=pixels).logits, expected(pixel_values=pixels).logits), side


def assert_decided(model: torch.nn.Module, strategy: str) -> None:
    """The strategy is in the settings, in `config.icpc` and in the forward, and the deferral's hooks are gone."""
    assert icpc_settings(model).position_strategy == strategy
    assert model.config.icpc["position_strategy"] == strategy
    module = embeddings(model)
    assert module.icpc_strategy == strategy and not hasattr(module, "icpc_deferred")
    assert not module._forward_pre_hooks and not module._load_state_dict_post_hooks


def assert_undecided(model: torch.nn.Module) -> None:
    assert icpc_settings(model).position_strategy is None and model.config.icpc["position_strategy"] is None
    assert embeddings(model).icpc_strategy is None


def patched_at_construction(model_class: type) -> type:
    """The model class with every instance patched right after construction, as when Transformers' own tests are
    run patched; `from_pretrained` then patches it while its weights are still on the meta device."""

    class PatchedAtConstruction(model_class):
        def post_init(self):
            super().post_init()
            patch_model(self, ICPCConfig(levels=LEVELS))

    return PatchedAtConstruction


def offloading_embeddings(model: torch.nn.Module) -> dict[str, str]:
    """A device map keeping the embeddings on disk (accelerate loads them inside each forward), the rest on CPU."""
    prefix = model.base_model_prefix
    device_map = {f"{prefix}.{name}": "cpu" for name, _ in model.base_model.named_children()}
    device_map[f"{prefix}.embeddings"] = "disk"
    device_map.update({name: "cpu" for name, _ in model.named_children() if name != prefix})
    return device_map


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("model_type", MAKERS)
def test_patched_on_meta_then_loaded_answers_as_patched_after_loading(model_type, layout, context):
    original = reference(model_type, layout)
    with CONTEXTS[context]():
        model = type(original)(copy.deepcopy(original.config)).eval()
    assert embeddings(model).position_embeddings.is_meta
    patch_model(model, ICPCConfig(levels=LEVELS))  # reading the table here raised "cannot be called on meta tensors"
    assert_undecided(model)
    model.load_state_dict(original.state_dict(), assign=True)
    ordinary = patched_normally(original)
    assert icpc_settings(ordinary).position_strategy == LAYOUTS[layout]
    assert_decided(model, LAYOUTS[layout])  # decided on loading, before any forward
    assert_answers_as(model, ordinary)
    assert icpc_settings(model).to_dict() == icpc_settings(ordinary).to_dict()


@pytest.mark.parametrize("loading", ["default", "device_map_cpu", "embeddings_on_disk"])
@pytest.mark.parametrize("model_type", MAKERS)
def test_from_pretrained_of_a_class_patched_at_construction(model_type, loading, tmp_path):
    original = reference(model_type, "learned")
    original.save_pretrained(tmp_path / "checkpoint")
    options = {
        "default": {},
        "device_map_cpu": {"device_map": "cpu"},
        "embeddings_on_disk": {"device_map": offloading_embeddings(original), "offload_folder": str(tmp_path / "off")},
    }[loading]
    model = patched_at_construction(type(original)).from_pretrained(tmp_path / "checkpoint", **options)
    assert_undecided(model)  # patched on meta inside from_pretrained; loading did not go through load_state_dict
    assert_answers_as(model, patched_normally(original))
    assert_decided(model, "interpolate")
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["icpc"]["position_strategy"] == "interpolate"


@pytest.mark.parametrize("model_type", MAKERS)
def test_from_pretrained_under_init_empty_weights_then_patched_then_loaded(model_type, tmp_path):
    original = reference(model_type, "learned")
    original.save_pretrained(tmp_path)
    with init_empty_weights():  # use_kernels=False: Transformers' kernels step refuses meta weights, patched or not
        model = type(original).from_pretrained(tmp_path, use_kernels=False)
    assert embeddings(model).position_embeddings.is_meta
    patch_model(model, ICPCConfig(levels=LEVELS))
    assert_undecided(model)
    model.load_state_dict(original.state_dict(), assign=True)
    assert_decided(model, "interpolate")
    assert_answers_as(model, patched_normally(original))


def test_a_model_saved_before_deciding_decides_when_patched_again(tmp_path):
    original = reference("vit", "learned")
    original.save_pretrained(tmp_path / "checkpoint")
    model = patched_at_construction(type(original)).from_pretrained(tmp_path / "checkpoint")
    model.save_pretrained(tmp_path / "saved")  # no forward yet: config.icpc names no strategy
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["icpc"]["position_strategy"] is None and saved["icpc"]["levels"] == LEVELS
    reloaded = patch_model(type(original).from_pretrained(tmp_path / "saved"))  # the saved settings, re-applied
    assert_decided(reloaded, "interpolate")
    assert_answers_as(reloaded, patched_normally(original))


@pytest.mark.parametrize("model_type", MAKERS)
def test_patched_on_meta_moved_and_initialised_as_transformers_tests_do(model_type):
    """Transformers' test_all_tensors_are_parameter_or_buffer: built on meta, `to_empty`, `init_weights`, a forward.
    A compressed forward on meta first leaves the strategy open and its position index on meta, not in the way."""
    original = MAKERS[model_type]()
    with torch.device("meta"):
        model = patched_at_construction(type(original))(copy.deepcopy(original.config)).eval()
        assert model(pixel_values=torch.randn(2, 3, 16, 16)).logits.shape == (2, 3)
    assert_undecided(model)
    model.to_empty(device="cpu")
    model.init_weights()
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert dict(model.named_buffers()).keys() == dict(original.named_buffers()).keys()
    with torch.no_grad():
        assert model(pixel_values=torch.randn(2, 3, 16, 16)).logits.isfinite().all()
    assert_decided(model, "crop")  # a freshly initialised table


def test_a_model_dispatched_before_patching_takes_compressed_inputs_and_unpatches(tmp_path):
    original = reference("vit", "learned")
    original.save_pretrained(tmp_path / "checkpoint")
    device_map = offloading_embeddings(original)
    model = type(original).from_pretrained(tmp_path / "checkpoint", device_map=device_map, offload_folder=tmp_path)
    assert embeddings(model).position_embeddings.is_meta  # accelerate loads it inside each forward
    patch_model(model, ICPCConfig(levels=LEVELS))
    assert_answers_as(model, patched_normally(original))  # the dispatch hooks call the patched forward
    assert_decided(model, "interpolate")
    unpatch_model(model)
    with torch.no_grad():
        full = torch.randn(2, 3, 32, 32)
        assert torch.equal(model(pixel_values=full).logits, original(pixel_values=full).logits)
        with pytest.raises(ValueError, match="doesn't match model"):  # the original forward again, as unpatched
            model(pixel_values=torch.randn(2, 3, 16, 16))


def test_unpatching_an_undecided_model_removes_its_hooks_and_patching_again_decides():
    original = reference("vit", "learned")
    with init_empty_weights():
        model = type(original)(copy.deepcopy(original.config)).eval()
    patch_model(model, ICPCConfig(levels=LEVELS))
    unpatch_model(model)
    module = embeddings(model)
    assert type(module).__name__ == "ViTEmbeddings" and not vars(module).keys() & {"icpc_deferred", "icpc_strategy"}
    assert not module._forward_pre_hooks and not module._load_state_dict_post_hooks
    model.load_state_dict(original.state_dict(), assign=True)
    patch_model(model)  # the saved settings (no strategy yet), now on loaded weights: decided at once
    assert_decided(model, "interpolate")
    assert_answers_as(model, patched_normally(original))


def test_a_model_with_weights_is_decided_at_patch_time_without_hooks():
    model = patch_model(learned_layout(tiny_vit()), ICPCConfig(levels=LEVELS))
    assert_decided(model, "interpolate")
