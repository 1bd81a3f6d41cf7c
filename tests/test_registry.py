import dataclasses
import inspect

import pytest
from helpers import tiny_vit
from transformers import AutoConfig, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY, SUPPORTED_TASKS

from icpc_hf import ICPCConfig, ICPCPipeline, is_patched, patch_model, unpatch_model
from icpc_hf.registry import FAMILIES, REGISTRY, ModelFamily, family_for, register

MODEL_TYPES = sorted(REGISTRY)
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


def test_families_cover_four_modalities_and_registry_maps_each_type_to_its_own_patch():
    assert [family.modality.name for family in FAMILIES] == ["image", "text", "audio", "video"]
    assert set(REGISTRY) == {model_type for family in FAMILIES for model_type in family.patches}
    for family in FAMILIES:
        for model_type, patch in family.patches.items():
            assert REGISTRY[model_type].family is family
            assert REGISTRY[model_type].modality is family.modality
            assert REGISTRY[model_type].patch is patch


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.modality.name)
def test_family_fields_agree_with_transformers(family):
    task, registered, _ = PIPELINE_REGISTRY.check_task(family.task)
    assert task == family.task and task.startswith("icpc-")
    assert registered == {"impl": family.pipeline_class, "pt": (family.auto_model,), "type": family.modality.name}
    assert issubclass(family.pipeline_class, ICPCPipeline)
    # the Hub tag is Transformers' own task for this kind of model, served by the same auto class
    assert SUPPORTED_TASKS[family.pipeline_tag]["pt"] == (family.auto_model,)
    assert family.processor_argument in inspect.signature(Pipeline.__init__).parameters
    assert family.classifier_description.endswith("classifier") and family.compression_description


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_auto_class_loads_a_tiny_model_that_its_patch_serves(model_type):
    family = family_for(model_type)
    # architectures=[]: Transformers 5.24's auto classes fail on a config whose `architectures` is None when the
    # model type maps to several classes (DeiT: with and without teacher); saved configs always name theirs.
    model = family.auto_model.from_config(AutoConfig.for_model(model_type, architectures=[], **TINY))
    assert model.config.model_type == model_type
    patch_model(model, ICPCConfig())
    assert is_patched(model) and model.config.icpc["model_type"] == model_type
    assert not is_patched(unpatch_model(model))


def test_lookup_by_config_and_by_model_type_give_the_same_record():
    config = tiny_vit().config
    assert family_for(config) is family_for("vit") is REGISTRY["vit"].family
    assert family_for(config).modality.name == "image"
    assert family_for("roberta") is family_for("bert")


@pytest.mark.parametrize("unsupported", ["not-a-model", None])
def test_unsupported_model_type_lists_the_supported_ones(unsupported):
    config = tiny_vit().config
    config.model_type = unsupported
    for lookup in (config, unsupported):
        with pytest.raises(ValueError, match=f"does not support model type {unsupported!r}") as error:
            family_for(lookup)
        assert all(model_type in str(error.value) for model_type in MODEL_TYPES)


def test_second_registration_of_a_model_type_is_refused_and_changes_nothing():
    vit = family_for("vit")
    before_registry, before_families = dict(REGISTRY), list(FAMILIES)
    again = dataclasses.replace(vit, patches={"new-type": vit.patches["vit"], "vit": vit.patches["vit"]})
    with pytest.raises(ValueError, match=r"vit already registered by the image family.*`patches`"):
        register(again)
    assert REGISTRY == before_registry and FAMILIES == before_families


def test_records_are_frozen():
    family = family_for("bert")
    with pytest.raises(dataclasses.FrozenInstanceError):
        family.pipeline_tag = "other"
    with pytest.raises(TypeError):
        family.patches["other"] = family.patches["bert"]
    assert isinstance(family, ModelFamily)
