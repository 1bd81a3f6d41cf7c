"""The Trainer's own save and push publish a servable ICPC model, with a model card of what training measured."""

import json
import os
import re
from concurrent.futures import Future
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import quiet_cpu_args, run_without_icpc_hf, tiny_image_processor, tiny_vit
from huggingface_hub import ModelCard
from PIL import Image
from transformers import Trainer, pipeline

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model, save_for_hub
from icpc_hf.training.hub import build_pipeline

LEVELS = [0.5, 0.75, 1.0]


def dataset(count, seed):
    generator = torch.Generator().manual_seed(seed)
    return [{"pixel_values": torch.randn(3, 32, 32, generator=generator), "label": i % 3} for i in range(count)]


def train(tmp_path, callback, eval_dataset=None, processor=True, **kwargs):
    torch.manual_seed(0)
    icpc = ICPCConfig(levels=LEVELS, cascade_levels=LEVELS, seed=1)
    values = dict(
        per_device_train_batch_size=4,
        num_train_epochs=1,
        save_strategy="epoch",
        eval_strategy="epoch" if eval_dataset is not None else "no",
    )
    values.update(kwargs)
    trainer = Trainer(
        model=patch_model(tiny_vit(), icpc),
        args=quiet_cpu_args(tmp_path / "out", **values),
        train_dataset=dataset(8, seed=0),
        eval_dataset=eval_dataset,
        processing_class=tiny_image_processor() if processor else None,
        data_collator=ICPCDataCollator(None, icpc),
        callbacks=[callback],
    )
    trainer.train()
    return trainer


def images(folder, count=4):
    rng = np.random.default_rng(0)
    stack = (rng.random((count, 32, 32, 3)) * 255).astype("uint8")
    np.save(folder / "images.npy", stack)
    return [Image.fromarray(im) for im in stack]


def code_blocks(card: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)


def test_trainer_save_model_and_checkpoints_are_served_without_icpc_hf_with_the_calibrated_cascade(tmp_path):
    callback = ICPCCallback()
    trainer = train(tmp_path, callback, eval_dataset=dataset(12, seed=1))
    trainer.save_model()
    out = tmp_path / "out"
    chosen = callback.calibration.chosen
    for folder in (out, out / "checkpoint-2"):
        assert {"model.safetensors", "preprocessor_config.json", "README.md", "pipelines.py"} <= set(os.listdir(folder))
        config = json.loads((folder / "config.json").read_text())
        assert (
            config["custom_pipelines"]["icpc-image-classification-remote-code"]["impl"]
            == "image.ICPCImageClassificationPipeline"
        )
    inputs = images(tmp_path)
    expected = build_pipeline(trainer.model, tiny_image_processor())(inputs, top_k=1)
    remote = run_without_icpc_hf(f"""
        import json, numpy as np
        from PIL import Image
        from transformers import pipeline
        classifier = pipeline(model={str(out)!r}, trust_remote_code=True)
        images = [Image.fromarray(im) for im in np.load({str(tmp_path / "images.npy")!r})]
        print(json.dumps({{"answers": classifier(images, top_k=1), "module": type(classifier).__module__,
                           "levels": classifier.icpc.cascade_levels, "thresholds": classifier.icpc.thresholds}}))
    """)
    assert not remote["module"].startswith("icpc_hf")
    assert remote["levels"] == chosen.levels and remote["thresholds"] == (chosen.thresholds or [0.0])
    for got, want in zip(remote["answers"], expected):
        assert (got[0]["label"], got[0]["level"]) == (want[0]["label"], want[0]["level"])
        assert got[0]["score"] == pytest.approx(want[0]["score"], abs=1e-5)


def test_card_reports_accuracy_cost_and_training_saving_in_the_hub_metadata(tmp_path):
    callback = ICPCCallback()
    train(tmp_path, callback, eval_dataset=dataset(12, seed=1))
    card = ModelCard.load(tmp_path / "out" / "README.md")
    calibration = callback.calibration
    metrics = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert metrics["Accuracy (full size)"] == pytest.approx(calibration.full_accuracy, abs=1e-6)
    assert metrics["Accuracy (served by the ICPC cascade)"] == pytest.approx(calibration.chosen.accuracy, abs=1e-6)
    assert calibration.cost_unit == "time"  # the default: what a user waits for
    assert metrics["Cascade cost (share of full-size time)"] == pytest.approx(calibration.chosen.cost, abs=1e-6)
    front = calibration.frontier()
    assert "Served frontier" in card.text and f"| {front[-1].accuracy:.4f} | {front[-1].cost:.3g} |" in card.text
    assert "model-index" in card.content
    totals = callback.train_totals
    assert f"{totals['tokens']:,.0f} of {totals['full_tokens']:,.0f}" in card.text
    assert f"{1 - totals['flops'] / totals['full_flops']:.1%}" in card.text
    assert card.text.splitlines()[1] == "# ViTForImageClassification fine-tuned with ICPC"  # not the folder's name
    assert "| cascade levels | " + ", ".join(f"{lv:.3g}" for lv in calibration.chosen.levels) in card.text


def test_card_without_an_evaluation_set_says_so_and_invents_no_numbers(tmp_path):
    callback = ICPCCallback()
    trainer = train(tmp_path, callback)
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.eval_results is None and "model-index" not in card.content
    assert "| accuracy | **not measured**: the Trainer had no evaluation set" in card.text
    assert "accuracy at full size" not in card.text
    other = tmp_path / "other"
    save_for_hub(trainer.model, tiny_image_processor(), other, callback=callback)
    assert "**not measured**" in (other / "README.md").read_text()


def test_how_to_use_runs_as_written_and_needs_no_remote_code_where_icpc_hf_is_installed(tmp_path):
    model = patch_model(tiny_vit(image_size=224, patch_size=32), ICPCConfig(levels=LEVELS, cascade_levels=[0.5, 1.0]))
    folder = tmp_path / "model"
    save_for_hub(model, tiny_image_processor(224), folder)
    without, with_icpc = code_blocks((folder / "README.md").read_text())
    assert "trust_remote_code" not in with_icpc
    remote = run_without_icpc_hf(without + "\nimport json\nprint(json.dumps(classifier.__class__.__module__))\n")
    assert not remote.startswith("icpc_hf")
    namespace = {}
    exec(with_icpc, namespace)  # the card's snippet, with icpc_hf imported: no trust_remote_code asked
    assert type(namespace["classifier"]).__module__ == "icpc_hf.image"
    without_task = pytest.raises(ValueError, match="trust_remote_code")
    with without_task:  # the task is needed: `pipeline(model=folder)` alone picks the remote code
        pipeline(model=str(folder))


@pytest.fixture
def hub(monkeypatch):
    """HfApi without the Hub: repositories are created under `someone/`, uploads are recorded."""
    import huggingface_hub

    uploads = []

    def create_repo(self, repo_id, **kwargs):
        return SimpleNamespace(repo_id=f"someone/{repo_id}")

    def upload_folder(
        self, repo_id, folder_path, commit_message=None, run_as_future=False, path_in_repo=None, **kwargs
    ):
        files = {n for n in os.listdir(folder_path) if not n.startswith(("_", "checkpoint-"))}
        readme = open(os.path.join(folder_path, "README.md")).read() if "README.md" in files else ""
        config = json.loads(open(os.path.join(folder_path, "config.json")).read())
        uploads.append({"files": files, "readme": readme, "config": config, "path": path_in_repo})
        if not run_as_future:
            return "commit"
        future = Future()
        future.set_result("commit")
        return future

    def upload_file(self, path_or_fileobj, path_in_repo, repo_id, **kwargs):
        uploads.append({"file": path_in_repo, "repo": repo_id, "readme": open(path_or_fileobj).read()})
        return "card commit"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", upload_file)
    return uploads


def test_trainer_push_to_hub_uploads_a_servable_folder_and_the_icpc_card(tmp_path, hub, caplog):
    uploads = hub
    callback = ICPCCallback()
    trainer = train(tmp_path, callback, eval_dataset=dataset(12, seed=1), push_to_hub=True, hub_model_id="icpc-vit")
    checkpoint_push = [u for u in uploads if u["path"] is None]
    assert checkpoint_push and "pipelines.py" in checkpoint_push[0]["files"]
    assert (
        "runs at the end of training, after this save" in checkpoint_push[0]["readme"]
    )  # pushed during training, before calibration
    uploads.clear()
    trainer.push_to_hub()
    final = uploads[-1]
    assert {"model.safetensors", "preprocessor_config.json", "pipelines.py", "README.md"} <= final["files"]
    assert "icpc-image-classification-remote-code" in final["config"]["custom_pipelines"]
    assert "callback.push_model_card(trainer)" in caplog.text  # Trainer's card replaced ours: the user is told
    assert callback.push_model_card(trainer) == "card commit"
    card = uploads[-1]
    assert card["file"] == "README.md" and card["repo"] == "someone/icpc-vit"
    assert "Accuracy (served by the ICPC cascade)" in card["readme"] and 'model="someone/icpc-vit"' in card["readme"]


def test_saving_or_pushing_without_patch_or_processor_is_refused_before_anything_is_written(tmp_path, hub):
    with pytest.raises(ValueError, match="patch_model"):
        save_for_hub(tiny_vit(), tiny_image_processor(), tmp_path / "unpatched")
    with pytest.raises(ValueError, match="processor"):
        save_for_hub(patch_model(tiny_vit(), ICPCConfig()), None, tmp_path / "no-processor")
    assert not (tmp_path / "unpatched").exists() and not (tmp_path / "no-processor").exists()
    with pytest.raises(ValueError, match="processing_class=processor"):
        train(tmp_path, ICPCCallback(calibrate=False), processor=False, push_to_hub=True, hub_model_id="x")
