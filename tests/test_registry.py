import dataclasses
import inspect
import re

import pytest
from helpers import tiny_vit
from transformers import AutoConfig, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY, SUPPORTED_TASKS

from icpc_hf import ICPCConfig, ICPCPipeline, is_patched, patch_model, unpatch_model
from icpc_hf.registry import REGISTRATIONS, REGISTRY, Registration, register, registration_for

MODEL_TYPES = sorted(REGISTRY)
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


def test_registrations_cover_four_modalities_and_registry_maps_each_type_to_its_own_architecture():
    assert [registration.modality.name for registration in REGISTRATIONS] == ["image", "text", "audio", "video"]
    assert set(REGISTRY) == {model_type for registration in REGISTRATIONS for model_type in registration.architectures}
    for registration in REGISTRATIONS:
        for model_type, architecture in registration.architectures.items():
            assert REGISTRY[model_type].registration is registration
            assert REGISTRY[model_type].modality is registration.modality
            assert REGISTRY[model_type].architecture is architecture


@pytest.mark.parametrize("registration", REGISTRATIONS, ids=lambda registration: registration.modality.name)
def test_registration_fields_agree_with_transformers(registration):
    task, registered, _ = PIPELINE_REGISTRY.check_task(registration.task)
    assert task == registration.task and task.startswith("icpc-")
    assert registered == {
        "impl": registration.pipeline_class,
        "pt": (registration.auto_model,),
        "type": registration.modality.name,
    }
    assert issubclass(registration.pipeline_class, ICPCPipeline)
    # the Hub tag is Transformers' own task for this kind of model, served by the same auto class
    assert SUPPORTED_TASKS[registration.pipeline_tag]["pt"] == (registration.auto_model,)
    assert registration.processor_argument in inspect.signature(Pipeline.__init__).parameters
    assert registration.classifier_description.endswith("classifier") and registration.compression_description


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_auto_class_loads_a_tiny_model_that_its_patch_serves(model_type):
    registration = registration_for(model_type)
    # architectures=[]: Transformers 5.24's auto classes fail on a config whose `architectures` is None when the
    # model type maps to several classes (DeiT: with and without teacher); saved configs always name theirs.
    model = registration.auto_model.from_config(AutoConfig.for_model(model_type, architectures=[], **TINY))
    assert model.config.model_type == model_type
    patch_model(model, ICPCConfig())
    assert is_patched(model) and model.config.icpc["model_type"] == model_type
    assert not is_patched(unpatch_model(model))


def test_lookup_by_config_and_by_model_type_give_the_same_record():
    config = tiny_vit().config
    assert registration_for(config) is registration_for("vit") is REGISTRY["vit"].registration
    assert registration_for(config).modality.name == "image"
    assert registration_for("roberta") is registration_for("bert")


@pytest.mark.parametrize("unsupported", ["not-a-model", None])
def test_unsupported_model_type_lists_the_supported_ones(unsupported):
    config = tiny_vit().config
    config.model_type = unsupported
    for lookup in (config, unsupported):
        with pytest.raises(ValueError, match=f"does not support model type {unsupported!r}") as error:
            registration_for(lookup)
        assert all(model_type in str(error.value) for model_type in MODEL_TYPES)


def test_second_registration_of_a_model_type_is_refused_and_changes_nothing():
    vit = registration_for("vit")
    before_registry, before_families = dict(REGISTRY), list(REGISTRATIONS)
    again = dataclasses.replace(
        vit, architectures={"new-type": vit.architectures["vit"], "vit": vit.architectures["vit"]}
    )
    with pytest.raises(ValueError, match=r"vit already registered by the image modality.*`architectures`"):
        register(again)
    assert REGISTRY == before_registry and REGISTRATIONS == before_families


def test_records_are_frozen():
    registration = registration_for("bert")
    with pytest.raises(dataclasses.FrozenInstanceError):
        registration.pipeline_tag = "other"
    with pytest.raises(TypeError):
        registration.architectures["other"] = registration.architectures["bert"]
    assert isinstance(registration, Registration)


@pytest.mark.parametrize(
    "old, new",
    [
        ("icpc_hf.ModelFamily", "icpc_hf.Registration"),
        ("icpc_hf.FAMILIES", "icpc_hf.REGISTRATIONS"),
        ("icpc_hf.family_for", "icpc_hf.registration_for"),
        ("icpc_hf.registry.Patch", "icpc_hf.registry.Architecture"),
        ("icpc_hf.embeddings.SwapPatch", "icpc_hf.embeddings.SwappedEmbeddings"),
        ("icpc_hf.embeddings_bert.TextPositionsPatch", "icpc_hf.embeddings_bert.TextPositions"),
    ],
)
def test_names_of_the_previous_release_still_work_and_name_their_new_place(old, new):
    import importlib

    module, name = old.rsplit(".", 1)
    with pytest.warns(FutureWarning, match=f"{re.escape(old)} is now {re.escape(new)};"):
        value = getattr(importlib.import_module(module), name)
    assert value is getattr(importlib.import_module(new.rsplit(".", 1)[0]), new.rsplit(".", 1)[1])
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = importlib.import_module(module).Nothing


def test_the_previous_names_of_a_registrations_architectures_still_work():
    vit = registration_for("vit")
    with pytest.warns(FutureWarning, match="Registration.patches is now Registration.architectures"):
        assert vit.patches is vit.architectures
    with pytest.warns(FutureWarning, match="Entry.patch is now Entry.architecture"):
        assert REGISTRY["vit"].patch is vit.architectures["vit"]
    with pytest.warns(FutureWarning, match="Registration\\(architectures=...\\)"):
        renamed = dataclasses.replace(vit, patches={"other-vit": vit.architectures["vit"]})
    assert dict(renamed.architectures) == {"other-vit": vit.architectures["vit"]}
