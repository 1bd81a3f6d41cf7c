"""ICPC_PATCHED=1: every model of a type icpc_hf supports is patched right after construction (a wrapper of
`PreTrainedModel.post_init`, which every model's `__init__` ends with), if it holds the embeddings the patch changes
(not, e.g., DINOv2's encoder, a PreTrainedModel of its own). ICPC_OUTCOMES=FILE: each test's outcome
(passed, failed, skipped) is written there as JSON, for run.py to compare."""

from __future__ import annotations

import json
import os

from transformers import PreTrainedModel

if os.environ.get("ICPC_PATCHED") == "1":
    from icpc_hf import REGISTRY, ICPCConfig, patch_model

    original_post_init = PreTrainedModel.post_init

    def post_init_then_patch(self):
        original_post_init(self)
        entry = REGISTRY.get(getattr(self.config, "model_type", None))
        embeddings = entry and (getattr(entry.patch, "original", None) or entry.patch.embeddings)
        if embeddings and any(isinstance(module, embeddings) for module in self.modules()):
            patch_model(self, ICPCConfig())

    PreTrainedModel.post_init = post_init_then_patch

OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report):
    """A test failed if any phase (or subtest) failed; skipped if skipped; else passed."""
    previous = OUTCOMES.get(report.nodeid, "passed")
    outcome = report.outcome if report.outcome != "passed" else previous
    OUTCOMES[report.nodeid] = "failed" if "failed" in (previous, outcome) else outcome


def pytest_sessionfinish(session):
    if os.environ.get("ICPC_OUTCOMES"):
        with open(os.environ["ICPC_OUTCOMES"], "w", encoding="utf-8") as handle:
            json.dump(OUTCOMES, handle, indent=1, sort_keys=True)
