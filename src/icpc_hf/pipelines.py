"""The ICPC pipeline: the usual classification pipeline, answered by the cascade.

Each modality's module subclasses it (`image.py`, ...); that module and what it imports relatively are what
the Hub export copies next to a saved model, so `pipeline(model=folder, trust_remote_code=True)` works where
icpc_hf is not installed: keep the imports relative (`from .x import y`) and the dependencies to torch and
transformers. A modality's registration names its pipeline class, so the registry and the modules reading it are
imported where they are used rather than at load time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transformers import Pipeline

from .serving_inputs import InputLimits, positive

if TYPE_CHECKING:
    from .cascade import CascadeResult


class ICPCPipeline(Pipeline):
    """Classify with the ICPC cascade; every answer says which level gave it and what it cost.

    Arguments, when the pipeline is built or per call: `thresholds` (one, or one per cascade level but the last),
    `levels` (the cascade levels), `top_k` (labels per answer, default 5), `batch_size` (samples per forward pass),
    for test-time augmentation `combine` ("last", "mean", "level_weighted"), `budget` and `budget_unit` (see
    `run_cascade`), and the limits of raw inputs this modality reads (`input_limits`, see `InputLimits`).
    """

    input_limits: tuple[str, ...] = ()
    """The `InputLimits` this modality's raw inputs read, which its pipeline takes as arguments."""

    def __init__(self, *args: Any, **kwargs: Any):
        from .patching import icpc_settings, is_patched, patch_model
        from .registry import registration_for

        super().__init__(*args, **kwargs)
        if not is_patched(self.model):
            patch_model(self.model)
        self.icpc = icpc_settings(self.model)
        self.modality = registration_for(self.icpc.model_type).modality
        InputLimits(**self._preprocess_params)

    def _sanitize_parameters(
        self, thresholds=None, levels=None, top_k=None, combine=None, budget=None, budget_unit=None, **kwargs
    ):
        unknown = sorted(set(kwargs) - {"batch_size", *self.input_limits})
        if unknown:
            known = sorted({"thresholds", "levels", "top_k", "combine", "budget", "budget_unit", "batch_size"})
            raise TypeError(
                f"Unknown argument(s) {unknown} for this ICPC pipeline: use {known + [*self.input_limits]}."
            )
        if top_k is not None:
            positive("top_k", top_k, "labels per answer", integer=True)
        options = dict(thresholds=thresholds, levels=levels, combine=combine, budget=budget, budget_unit=budget_unit)
        options["batch_size"] = kwargs.pop("batch_size", None)
        limits = {k: v for k, v in kwargs.items() if v is not None}
        forward_params = {k: v for k, v in options.items() if v is not None}
        return limits, forward_params, {} if top_k is None else {"top_k": top_k}

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        limits, forward_params, postprocess_params = self._sanitize_parameters(**kwargs)
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        if not items:
            return []
        limits = InputLimits(**{**self._preprocess_params, **limits})
        batch_size = 32 if self._batch_size is None else self._batch_size
        forward_params = {"batch_size": batch_size, **self._forward_params, **forward_params}
        postprocess_params = {**self._postprocess_params, **postprocess_params}
        features = self.modality.prepare_many(self.modality.processor_of(self), items, self.icpc, limits)
        result = self._forward(features, **forward_params)
        answers = [self.postprocess((result, i), **postprocess_params) for i in range(len(items))]
        return answers[0] if single else answers

    def preprocess(self, inputs: Any, **kwargs: Any) -> dict[str, Any]:
        return self.modality.prepare(self.modality.processor_of(self), inputs, self.icpc, InputLimits(**kwargs))

    def _forward(self, features: list[dict[str, Any]], batch_size: int = 32, **kwargs: Any) -> CascadeResult:
        from .cascade import run_cascade

        processor = self.modality.processor_of(self)
        return run_cascade(self.model, features, processor, self.icpc, batch_size=batch_size, **kwargs)

    def postprocess(self, output: tuple[CascadeResult, int], top_k: int = 5) -> list[dict[str, Any]]:
        result, index = output
        probabilities = result.probabilities[index]
        scores, ids = probabilities.topk(min(top_k, probabilities.shape[-1]))
        details = {
            "level": result.levels[int(result.answered_step[index])],
            "tokens": int(result.tokens[index]),
            "levels_used": result.levels_used(index),
            "cost": float(result.spent_flops[index] / result.full_flops[index]),
        }
        id2label = self.model.config.id2label
        return [
            {"label": id2label[int(i)], "score": float(s), **details} for s, i in zip(scores.tolist(), ids.tolist())
        ]
