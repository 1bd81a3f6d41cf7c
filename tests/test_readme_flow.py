"""The README's Trainer snippet, run as written, ships a model whose cascade was calibrated on `eval_dataset`.

Only the README's placeholders are filled in (`ViTConfig(...)`, `TrainingArguments(...)` and the data); every other
line is executed as the README prints it, so the snippet cannot drift from what works.
"""

import glob
import os
import re

import pytest
import torch
from helpers import quiet_cpu_args, tiny_image_processor
from PIL import Image

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
PLACEHOLDERS = {
    "ViTConfig(...)": "ViTConfig(image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2, "
    "num_attention_heads=2, intermediate_size=64, num_labels=3)",
    "TrainingArguments(...)": "TrainingArguments(output_dir=out, num_train_epochs=2, per_device_train_batch_size=8, "
    "report_to=[], use_cpu=True, save_strategy='no', disable_tqdm=True, "
    "remove_unused_columns=False)",
}


def readme_snippet() -> str:
    text = open(README, encoding="utf-8").read()
    use = text[text.index("## Use") :]
    code = re.search(r"```python\n(.*?)```", use, re.S).group(1)
    for placeholder, value in PLACEHOLDERS.items():
        assert placeholder in code, f"the README's snippet no longer has {placeholder}: update this test"
        code = code.replace(placeholder, value)
    return code


def test_the_readme_is_a_front_door():
    """Install, then a working snippet within the first screenful; the demo and test commands; short; and no
    project history (issue numbers, selection rounds) in the README or the guides: that lives in docs/results/."""
    text = open(README, encoding="utf-8").read()
    lines = text.splitlines()
    assert len(lines) < 180, f"the README has {len(lines)} lines: move details to docs/"
    snippet_start = lines.index("```python", next(i for i, line in enumerate(lines) if line.startswith("## Use")))
    snippet_end = lines.index("```", snippet_start)
    assert snippet_end < 60, f"the Trainer snippet ends on line {snippet_end + 1}: a newcomer should reach it sooner"
    assert text.index("pip install icpc-hf") < text.index("```python")
    for command in (
        "bash .ci/setup && python3 examples/demo_digits.py",
        "bash .ci/setup && python3 -m pytest -q tests",
    ):
        assert command in text
    guides = glob.glob(os.path.join(os.path.dirname(README), "docs", "guides", "*.md"))
    history = re.compile(r"\b(issue|round) \d+", re.I)
    assert guides and not [p for p in [README, *guides] if history.search(open(p, encoding="utf-8").read())]


def images(count: int, seed: int) -> list[dict]:
    """Three classes a tiny ViT tells apart in two epochs: a bright square in one of three places."""
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for index in range(count):
        label = index % 3
        pixels = (torch.rand(32, 32, 3, generator=generator) * 60).to(torch.uint8)
        pixels[4 + 8 * label : 12 + 8 * label, 4:28] = 255
        samples.append({"image": Image.fromarray(pixels.numpy()), "label": label})
    return samples


@pytest.mark.usefixtures("one_torch_thread")
def test_the_readme_trainer_flow_ships_a_calibrated_cascade(tmp_path):
    torch.manual_seed(0)
    out = str(tmp_path / "model")
    namespace = {
        "out": out,
        "image_processor": tiny_image_processor(32),
        "train": images(48, seed=0),
        "val": images(24, seed=1),
        "images": [s["image"] for s in images(4, seed=2)],
    }
    exec(compile(readme_snippet(), README, "exec"), namespace)  # noqa: S102 - the README's own code

    trainer, callback = namespace["trainer"], None
    callback = next(c for c in trainer.callback_handler.callbacks if type(c).__name__ == "ICPCCallback")
    assert trainer.args.eval_strategy == "no"  # as the README shows it: no evaluation schedule
    assert callback.calibration is not None, "the callback did not reach the Trainer's eval_dataset"
    chosen = callback.calibration.chosen
    saved = __import__("json").load(open(os.path.join(out, "config.json")))["icpc"]
    if chosen is not None:
        assert saved["cascade_levels"] == chosen.levels
    else:  # nothing met the target: full size alone, said in the log
        assert saved["cascade_levels"] == [1.0]
    assert len(callback.calibration.points) > 1  # every candidate cascade was measured on `val`
    assert len(namespace["clf"](namespace["images"])) == 4


class LogRecorder(__import__("transformers").TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


@pytest.mark.usefixtures("one_torch_thread")
def test_the_callback_goes_ahead_of_callbacks_listed_before_it(tmp_path):
    """Reporters the Trainer lists before ICPCCallback still receive its icpc/ figures, without `attach`."""
    from helpers import tiny_vit
    from transformers import Trainer, ViTForImageClassification

    from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model

    icpc = ICPCConfig(levels=[0.5, 1.0], schedule="constant")
    model = patch_model(tiny_vit(), icpc)
    recorder, callback = LogRecorder(), ICPCCallback(calibrate=False, publish=False)
    args = quiet_cpu_args(
        str(tmp_path),
        num_train_epochs=1,
        per_device_train_batch_size=4,
        logging_steps=1,
    )
    data = [{"pixel_values": torch.randn(3, 32, 32), "label": i % 3} for i in range(8)]
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=ICPCDataCollator(None, icpc),
        callbacks=[recorder, callback],
    )
    assert isinstance(model, ViTForImageClassification)
    assert trainer.callback_handler.callbacks[0] is callback
    trainer.train()
    training_logs = [log for log in recorder.logs if "loss" in log]
    assert training_logs and all("icpc/token_ratio" in log for log in training_logs)
