"""icpc_hf: Input Compression with Positional Consistency for Hugging Face Transformers."""

from transformers.pipelines import PIPELINE_REGISTRY

from .cascade import CascadePolicy, CascadeResult, run_cascade
from .config import ICPCConfig
from .costs import encoder_flops
from .patching import icpc_settings, is_patched, patch_model, unpatch_model

from .image import ICPCImageClassificationPipeline  # isort: skip  (registration order: image, text, audio, video)
from .text import ICPCTextClassificationPipeline  # isort: skip
from .audio import ICPCAudioClassificationPipeline  # isort: skip
from .video import ICPCVideoClassificationPipeline  # isort: skip
from .pipelines import ICPCPipeline
from .previous_names import old_module_names
from .registry import REGISTRATIONS, REGISTRY, Registration, register, registration_for
from .training.callback import ICPCCallback, install_levels
from .training.collator import ICPCDataCollator
from .training.compensate import compensate_levels
from .training.hub import build_pipeline, load_adapter, push_adapter_to_hub, push_to_hub, save_adapter, save_for_hub
from .training.plan import LevelledCollate, LevelPlan
from .training.word_scores import fit_word_scores
from .version import __version__ as __version__

for _registration in REGISTRATIONS:
    PIPELINE_REGISTRY.register_pipeline(
        _registration.task,
        pipeline_class=_registration.pipeline_class,
        pt_model=_registration.auto_model,
        type=_registration.modality.name,
    )

__all__ = [
    "REGISTRY",
    "Registration",
    "registration_for",
    "REGISTRATIONS",
    "register",
    "CascadePolicy",
    "CascadeResult",
    "ICPCCallback",
    "ICPCConfig",
    "ICPCDataCollator",
    "ICPCAudioClassificationPipeline",
    "ICPCImageClassificationPipeline",
    "ICPCTextClassificationPipeline",
    "ICPCVideoClassificationPipeline",
    "ICPCPipeline",
    "LevelPlan",
    "LevelledCollate",
    "build_pipeline",
    "encoder_flops",
    "compensate_levels",
    "fit_word_scores",
    "icpc_settings",
    "install_levels",
    "is_patched",
    "patch_model",
    "run_cascade",
    "load_adapter",
    "push_adapter_to_hub",
    "push_to_hub",
    "save_adapter",
    "save_for_hub",
    "unpatch_model",
]

RENAMED = {"ModelFamily": "Registration", "FAMILIES": "REGISTRATIONS", "family_for": "registration_for"}
"""Public names before the rename of 2026-11-30 -> their names now: they keep working for one release, with a
FutureWarning (and are left out of `__all__`, so `import *` does not warn)."""

__getattr__ = old_module_names(__name__, RENAMED, globals())
