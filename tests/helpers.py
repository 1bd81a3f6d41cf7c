"""Tiny models and a fresh-process loader shared by the tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from transformers import TrainerCallback, TrainingArguments, ViTConfig, ViTForImageClassification, ViTImageProcessor

from icpc_hf import ICPCDataCollator


class RecordingCollator(ICPCDataCollator):
    """Records each batch's image side and, when the features carry one, their `idx`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = []

    def __call__(self, features, level=None):
        batch = super().__call__(features, level)
        self.batches.append((int(batch["pixel_values"].shape[-1]), tuple(f.get("idx", -1) for f in features)))
        return batch

    @property
    def sides(self):
        return [side for side, _ in self.batches]


class InputRecorder:
    """Records what a model trains on, in the training process (batches may be collated in DataLoader workers):
    each training batch's image side and a fingerprint of its pixels."""

    def __init__(self, model):
        self.batches = []
        model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        if module.training:
            pixels = kwargs["pixel_values"]
            self.batches.append((int(pixels.shape[-1]), round(float(pixels.double().abs().sum()), 3)))

    @property
    def sides(self):
        return [side for side, _ in self.batches]


class StopAt(TrainerCallback):
    """Stops training after optimizer step `step`, as an interrupted run would."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def quiet_cpu_args(output_dir, **overrides) -> TrainingArguments:
    """Trainer arguments every test run shares (CPU, no reports, saves or progress bars, ICPC's columns kept);
    the test gives what it varies."""
    values = dict(
        output_dir=str(output_dir),
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    return TrainingArguments(**{**values, **overrides})


def tiny_vit(image_size: int = 32, patch_size: int = 4, num_channels: int = 3, num_labels: int = 3, **kwargs):
    config = ViTConfig(
        image_size=image_size,
        patch_size=patch_size,
        num_channels=num_channels,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=num_labels,
        **kwargs,
    )
    return ViTForImageClassification(config).eval()


def tiny_image_processor(image_size: int = 32) -> ViTImageProcessor:
    return ViTImageProcessor(size={"height": image_size, "width": image_size})


BLOCK_ICPC = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "icpc_hf" or name.startswith("icpc_hf."):
            raise ImportError("icpc_hf is blocked in this process")
sys.meta_path.insert(0, _Block())
"""


def run_without_icpc_hf(body: str) -> dict:
    """Run `body` in a fresh Python where icpc_hf cannot be imported; it must print one JSON line last."""
    script = BLOCK_ICPC + textwrap.dedent(body)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"fresh process failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_two_processes(script: str, port: int, *args) -> None:
    """Run a test worker under `torchrun --nproc_per_node 2` (on CPU, one thread each); skip without torchrun."""
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun not on PATH")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    command = ["torchrun", "--nproc_per_node", "2", "--master_port", str(port), worker, *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
