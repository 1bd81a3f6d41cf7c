"""Level compensation: per-level embedding parameters trained after training, over every grid model type.

Full size and unpatched forwards stay bit-identical; the parameters travel with the model (save, load, the Hub folder
served without icpc_hf); bad requests get errors naming the fix.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from helpers import quiet_cpu_args, run_without_icpc_hf
from safetensors.torch import load_file, save_file
from test_contract import CASES, COMPRESSED, patched
from transformers import Trainer, pipeline

from icpc_hf import ICPCCallback, compensation, icpc_settings, patch_model, registration_for, run_cascade, unpatch_model
from icpc_hf.training.compensate import compensate_levels

pytestmark = pytest.mark.usefixtures("one_torch_thread")
GRID_CASES = sorted(name for name, case in CASES.items() if case.grid)
QUICK = dict(epochs=20, batch_size=4, learning_rate=3e-2)


def sharpened(model):
    """Tiny random models answer almost uniformly at every level; a sharper head gives the levels a gap to close."""
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == model.config.num_labels]
    with torch.no_grad():
        head[-1].weight.mul_(5.0)
    return model


def compensated(model_type: str):
    case = CASES[model_type]
    torch.manual_seed(0)
    model, _, _ = patched(case, levels=[0.25, 1.0])  # the smallest grid: the widest gap to close
    sharpened(model)
    processor = case.processor()
    features = case.features(processor)
    return model, processor, features


def smallest(model) -> float:
    return min(icpc_settings(model).levels)


def probabilities(model, features, processor, level):
    return run_cascade(model, features, processor, levels=[level]).probabilities


@pytest.mark.parametrize("model_type", GRID_CASES)
def test_compensation_mends_the_compressed_level_and_leaves_full_size_bit_identical(model_type):
    model, processor, features = compensated(model_type)
    original = copy.deepcopy(model)
    small = smallest(model)
    full_before = probabilities(model, features, processor, 1.0)
    # a tiny random model answers alike at every level: start the level's parameters off, so there is a gap to close
    grid = registration_for(model.config).modality.grid(small, icpc_settings(model))
    embeddings = [m for m in model.modules() if hasattr(m, "icpc_full_grid")]
    for module in embeddings:
        compensation.install(module, [grid], icpc_settings(model).geometry["special_tokens"], 32, compensation.PARTS)
        with torch.no_grad():
            module.icpc_compensators[compensation.grid_key(grid)].positions.normal_(0.0, 0.3)
    report = compensate_levels(model, features, processor, **QUICK)
    assert report.levels == [small] and report.steps == QUICK["epochs"]
    assert report.divergence_after[f"{small:g}"] < report.divergence_before[f"{small:g}"]
    assert torch.equal(probabilities(model, features, processor, 1.0), full_before)
    saved = model.config.icpc["level_compensation"]
    assert saved["levels"] == [small] and saved["parts"] == ["projection", "positions"]
    # the backbone did not move, and no parameter was left frozen or unfrozen
    after = dict(model.named_parameters())
    for name, before in original.named_parameters():
        assert torch.equal(before, after[name]) and before.requires_grad == after[name].requires_grad, name
    assert all(p.requires_grad for n, p in after.items() if "icpc_compensators" in n)
    unpatch_model(model)  # the original forward ignores the compensators
    batch = registration_for(model.config).modality.collate(processor, features, 1.0, icpc_settings(original))
    batch.pop("labels", None)
    unpatch_model(original)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, original(**batch).logits)


@pytest.mark.parametrize("model_type", GRID_CASES)
def test_compensated_levels_travel_with_the_model(model_type, tmp_path):
    model, processor, features = compensated(model_type)
    small = smallest(model)
    compensate_levels(model, features, processor, **QUICK)
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path)  # the unpatched class drops the compensators quietly
    patch_model(loaded)
    for level in (small, 1.0):
        assert torch.equal(
            probabilities(loaded, features, processor, level), probabilities(model, features, processor, level)
        )
    patch_model(loaded)  # re-patching a live model keeps its values
    assert torch.equal(
        probabilities(loaded, features, processor, small), probabilities(model, features, processor, small)
    )


@pytest.mark.parametrize("model_type", ["vit", "audio-spectrogram-transformer", "videomae"])
def test_the_hub_folder_serves_compensated_levels_without_icpc_hf(model_type, tmp_path, monkeypatch):
    from icpc_hf import save_for_hub

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    case = CASES[model_type]
    model, _, _ = patched(case, cascade_levels=[COMPRESSED, 1.0], thresholds=1.0)  # every sample runs both levels
    processor = case.processor()
    compensate_levels(model, case.features(processor), processor, **QUICK)
    patch_model(model, {**model.config.icpc, "thresholds": 0.0})
    registration = registration_for(model_type)
    classifier = pipeline(registration.task, model=model, **{registration.processor_argument: processor})
    raw = case.raw()
    local = classifier(raw, top_k=2)
    assert local[0]["level"] == min(icpc_settings(model).cascade_levels)
    save_for_hub(model, processor, tmp_path / "model")
    import numpy as np

    np.save(tmp_path / "input.npy", np.asarray(raw))
    load = f"np.load({str(tmp_path / 'input.npy')!r})"
    if registration.modality.name == "image":
        raw.save(tmp_path / "input.png")
        load = repr(str(tmp_path / "input.png"))
    served = run_without_icpc_hf(f"""
        import json, warnings, numpy as np
        warnings.simplefilter("ignore")
        from transformers import pipeline
        classifier = pipeline(model={str(tmp_path / "model")!r}, trust_remote_code=True)
        print(json.dumps(classifier({load}, top_k=2)))
    """)
    assert [a["label"] for a in served] == [a["label"] for a in local]
    np.testing.assert_allclose([a["score"] for a in served], [a["score"] for a in local], atol=1e-5)


def test_compensation_refuses_text_models_and_missing_training_data():
    text = CASES["bert"]
    model, _, _ = patched(text)
    with pytest.raises(ValueError, match="pruned in the collator"):
        compensate_levels(model, text.features(text.processor()), text.processor())
    model, processor, _ = compensated("vit")
    with pytest.raises(ValueError, match="got none"):
        compensate_levels(model, [], processor)
    with pytest.raises(ValueError, match="Unknown compensation parts"):
        compensate_levels(model, [{}], processor, parts=["everything"])
    with pytest.raises(ValueError, match="no level below full size"):
        compensate_levels(model, [{}], processor, levels=[1.0])


def test_loading_without_the_parameters_or_for_another_geometry_names_the_fix(tmp_path):
    model, processor, features = compensated("vit")
    compensate_levels(model, features, processor, **QUICK)
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    tensors = load_file(weights)
    key = next(k for k in tensors if "icpc_compensators" in k and k.endswith("positions"))
    save_file({**tensors, key: torch.zeros(3, tensors[key].shape[1])}, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="another geometry"):
        patch_model(type(model).from_pretrained(tmp_path))
    save_file({k: v for k, v in tensors.items() if "icpc_compensators" not in k}, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="delete `level_compensation`"):
        patch_model(type(model).from_pretrained(tmp_path))
    plain = type(model).from_pretrained(tmp_path)
    settings = json.loads((tmp_path / "config.json").read_text())["icpc"]
    patch_model(plain, {**settings, "level_compensation": None})  # served without them: the levels as trained
    assert probabilities(plain, features, processor, COMPRESSED).shape[0] == len(features)


def test_a_level_without_parameters_is_refused_at_serving():
    case = CASES["vit"]
    model, _, _ = patched(case, levels=[0.25, COMPRESSED, 1.0])
    processor = case.processor()
    features = case.features(processor)
    compensate_levels(model, features, processor, levels=[COMPRESSED], **QUICK)
    with pytest.raises(ValueError, match="compensation parameters for the grids"):
        run_cascade(model, features, processor, levels=[0.25, 1.0])


def trained_vit(tmp_path, callback, repeat: int = 1):
    """A tiny ViT trained for one epoch with `callback`, its features both the training and the evaluation set."""
    case = CASES["vit"]
    model, _, collator = patched(case, levels=[0.25, COMPRESSED, 1.0])
    processor = case.processor()
    features = case.features(processor) * repeat
    trainer = Trainer(
        model=model,
        args=quiet_cpu_args(str(tmp_path), num_train_epochs=1),
        train_dataset=features,
        eval_dataset=features,
        data_collator=collator,
        callbacks=[callback],
    )
    trainer.train()
    return model, trainer, processor, features


def test_the_callback_compensates_before_it_calibrates(tmp_path):
    callback = ICPCCallback(publish=False)
    model, trainer, processor, _ = trained_vit(tmp_path, callback)
    assert callback.compensation.report is not None and callback.compensation.report.levels == [0.25, COMPRESSED]
    assert model.config.icpc["level_compensation"]["levels"] == [0.25, COMPRESSED]
    assert any("icpc/compensation_seconds" in h for h in trainer.state.log_history)
    assert callback.calibration is not None  # calibrated after: its passes ran the compensated levels
    off = ICPCCallback(publish=False, compensate=False)
    assert off.compensation.run(model, trainer, processor) is None
    with pytest.raises(ValueError, match="Unknown compensation setting"):
        ICPCCallback(compensate={"epoch": 3})


def test_the_held_out_check_ships_a_cascade_that_holds_and_refuses_one_that_loses():
    from icpc_hf.training.ship_check import check_settings, loss_bound

    right = torch.ones(400, dtype=torch.bool)
    assert loss_bound(right, right, 0.95) == pytest.approx(0.0)
    four_lost = right.clone()
    four_lost[:4] = False  # 4 of 400 lost, none won: a 1% loss, whose bound is above 1%
    assert loss_bound(right, four_lost, 0.95) > 0.01
    one_lost, one_won = right.clone(), right.clone()
    one_lost[0], one_won[-1] = False, False  # the cascade loses one sample and wins another: no loss, a small bound
    assert 0.0 < loss_bound(one_won, one_lost, 0.95) < 0.01
    assert check_settings(False) is None and check_settings(True)["max_loss"] == 0.01
    with pytest.raises(ValueError, match="ship_check"):
        check_settings({"margin": 0.1})


def test_the_callback_serves_full_size_when_the_cascade_fails_the_held_out_check(tmp_path, caplog):
    # every setting meets this target, so the cheapest cascade is chosen on the first half
    callback = ICPCCallback(publish=False, compensate=False, calibrate={"min_accuracy": 0.0, "cost": "flops"})
    callback.shipping.check["max_loss"] = -1.0  # a loss bound is never below -1: the cascade fails the check
    model, _, _, features = trained_vit(tmp_path, callback, repeat=6)
    report = callback.shipping.ship_check
    assert report.calibrated_on + report.checked_on == len(features)
    assert callback.calibration.chosen.levels[0] < 1.0 and report.loss_bound is not None
    assert not report.ships and model.config.icpc["cascade_levels"] == [1.0]
    assert "did not hold on the other half" in caplog.text
