"""Mixed precision and torch.compile: ICPC trains under `bf16=True` with its icpc/ figures right, and a compiled
patched model compiles each level once, on the CPU path and on the device path alike."""

from __future__ import annotations

import pytest
import torch
from helpers import quiet_cpu_args, tiny_vit
from transformers import Trainer

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def data(count=16):
    generator = torch.Generator().manual_seed(1)
    return [{"pixel_values": torch.randn(3, 32, 32, generator=generator), "label": i % 3} for i in range(count)]


def train(tmp_path, **extra):
    torch.manual_seed(0)
    model = patch_model(tiny_vit(), ICPCConfig(levels=[0.5, 0.75, 1.0]))
    dtypes = []
    model.classifier.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    args = quiet_cpu_args(
        str(tmp_path / str(sorted(extra))),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        logging_steps=2,
        seed=0,
        **extra,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data(),
        data_collator=ICPCDataCollator(None, model.config.icpc),
        callbacks=[ICPCCallback(calibrate=False, publish=False)],
    )
    trainer.train()
    return [log for log in trainer.state.log_history if "loss" in log], dtypes


def test_bf16_training_keeps_the_icpc_figures_right(tmp_path):
    logs32, dtypes32 = train(tmp_path)
    logs16, dtypes16 = train(tmp_path, bf16=True)
    assert set(dtypes32) == {torch.float32} and torch.bfloat16 in set(dtypes16)  # autocast really ran
    assert all(torch.isfinite(torch.tensor(log["loss"])) for log in logs16)
    keys = ("icpc/tokens_per_sample", "icpc/token_ratio", "icpc/flops_saved")
    assert any(log["icpc/token_ratio"] < 1 for log in logs16)
    for log16, log32 in zip(logs16, logs32, strict=True):  # counts, not values: identical whatever the precision
        assert {k: log16[k] for k in keys} == pytest.approx({k: log32[k] for k in keys})


class CountingBackend:
    """A torch.compile backend that counts the graphs it is given and runs them eagerly (no compiler needed)."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        return graph_module.forward


@pytest.mark.parametrize("resize_on_device", [False, True])
def test_compile_compiles_each_level_once(resize_on_device):
    torch._dynamo.reset()
    icpc = ICPCConfig(levels=[0.5, 0.75, 1.0])
    model = patch_model(tiny_vit(), icpc).train()
    backend = CountingBackend()
    compiled = torch.compile(model, backend=backend)
    collator = ICPCDataCollator(None, icpc, resize_on_device=resize_on_device)
    features = data(4)
    order = [0.5, 1.0, 0.75, 0.75, 0.5, 1.0]
    per_pass = []
    for _ in range(2):
        for level in order:
            compiled(**collator(features, level=level)).loss.backward()
        per_pass.append(backend.graphs)
    first = per_pass[0]
    assert first >= len(icpc.levels)  # a new level is a new shape: it compiles...
    assert per_pass[1] == first  # ...once: a second pass over the same levels compiles nothing
    # bounded by the distinct levels (a level may cost a graph per piece between graph breaks, and one more when
    # dynamo turns a changing size dynamic)
    assert first <= 3 * len(icpc.levels)


def test_trainer_torch_compile_trains_with_icpc(tmp_path):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    logs, _ = train(tmp_path, torch_compile=True, torch_compile_backend="eager")
    graphs = counters["stats"]["unique_graphs"]
    assert 3 <= graphs <= 9  # three levels (one batch size): each compiled, none recompiled per step (8 steps)
    assert any(log["icpc/token_ratio"] < 1 for log in logs)
