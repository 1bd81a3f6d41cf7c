"""Model cards for ICPC-finetuned models: the settings, a usage that runs as written, and what training measured.

Results go in the Hub's metadata (`model-index`, through `huggingface_hub.EvalResult`) and in a table; a card
whose results were asked for but never measured says so instead of showing numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..config import ICPCConfig
from ..registry import registration_for
from .calibrate import Calibration


@dataclass
class Measured:
    """What ICPCCallback measured, for the card (`ICPCCallback.measured()`)."""

    calibration: Calibration | None = None
    """The end-of-training calibration; None when it did not run (see `missing`)."""
    train_totals: dict[str, float] | None = None
    """`ICPCCallback.train_totals`: samples, tokens and estimated FLOPs trained, compressed and at full size."""
    missing: str | None = None
    """Why there are no accuracy figures, in a sentence, when `calibration` is None."""
    dataset_type: str = "custom"
    dataset_name: str = "evaluation set"
    dataset_config: str | None = None
    dataset_split: str | None = None


EXAMPLE_INPUTS = {
    "image": (
        'from PIL import Image\n\nimage = Image.new("RGB", (224, 224), "white")  # or Image.open("photo.jpg")\n\n',
        "image",
    ),
    "text": ("", '"A quietly brilliant film."'),
    "audio": (
        "import numpy as np\n\nwaveform = np.zeros(16000, dtype=np.float32)  # one second of 16 kHz audio\n\n",
        "waveform",
    ),
    "video": (
        "import numpy as np\n\nclip = [np.zeros((224, 224, 3), dtype=np.uint8)] * 16  # 16 RGB frames\n\n",
        "clip",
    ),
}
"""Per modality: the code making one input, and its name, so the card's usage runs as written."""

TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A {{ model_type }} {{ task_description }} fine-tuned with **ICPC** (Input Compression with Positional
Consistency, Nagarajan & Raghunathan, ECML PKDD 2024) using [icpc_hf](https://pypi.org/project/icpc-hf/).
During training every sample was compressed by a random level each epoch ({{ modality_description }}), with
positions consistent with the uncompressed input, so the unchanged Transformer processes it. At inference a
cascade answers with the most compressed input first and re-runs only the samples it is unsure of.

## Results

{{ results_table }}
{% if results %}
{{ results }}
{% endif %}
## ICPC settings

| setting | value |
|---|---|
| training levels | {{ levels }} |
| position strategy | `{{ position_strategy }}` |
| cascade levels | {{ cascade_levels }} |
| cascade thresholds | {{ thresholds }} |
| uncompressed last epochs | {{ uncompressed_last_epochs }} |

The full settings are in `config.json` under `icpc`.

## How to use

Without icpc_hf, the pipeline code stored in this repository serves the cascade (read it first: it runs on
your machine):

```python
{{ example_setup }}from transformers import pipeline

classifier = pipeline(model="{{ repo_id }}", trust_remote_code=True)
print(classifier({{ example_input }}, top_k=1))
```

With icpc_hf installed, its own code serves the model and no remote code is run:

```python
{{ example_setup }}import icpc_hf
from transformers import pipeline

classifier = pipeline("{{ task }}", model="{{ repo_id }}")
print(classifier({{ example_input }}, top_k=1))
```

Every answer carries the level that gave it, its token count and its cost. Thresholds and levels can be set per
call: `classifier(inputs, thresholds=0.8, levels=[0.5, 1.0])`.
"""


def results_of(measured: Measured | None, task: str, pipeline_tag: str) -> tuple[list[EvalResult], str]:
    """The card's `model-index` entries and its results table; a sentence saying why when nothing was measured."""
    if measured is None:
        return [], "Not reported: the card was written without training measurements."
    lines = []
    totals = measured.train_totals or {}
    if totals.get("full_tokens"):
        lines.append(
            f"| training tokens | {totals['tokens']:,.0f} of {totals['full_tokens']:,.0f} at full size "
            f"({1 - totals['tokens'] / totals['full_tokens']:.1%} fewer) |"
        )
    if totals.get("full_flops"):
        lines.append(
            f"| estimated training FLOPs saved | {1 - totals['flops'] / totals['full_flops']:.1%} "
            f"(encoder forward passes, {totals['samples']:,.0f} samples) |"
        )
    calibration = measured.calibration
    if calibration is None:
        lines.append(f"| accuracy | **not measured**: {measured.missing or 'no evaluation set'} |")
        return [], "| measure | value |\n|---|---|\n" + "\n".join(lines)
    chosen = calibration.chosen
    served_accuracy, cost = (chosen.accuracy, chosen.cost) if chosen else (calibration.full_accuracy, 1.0)
    lines.append(f"| accuracy at full size | {calibration.full_accuracy:.4f} |")
    served = f"levels {', '.join(f'{lv:g}' for lv in chosen.levels)}" if chosen else "full size alone"
    lines.append(f"| accuracy as served by the cascade ({served}) | {served_accuracy:.4f} |")
    unit = "time" if calibration.cost_unit == "time" else "FLOPs"
    lines.append(f"| cascade cost | {cost:.3g} of a full-size pass ({1 / cost:.2f}x less {unit}) |")
    dataset = dict(
        dataset_type=measured.dataset_type,
        dataset_name=measured.dataset_name,
        dataset_config=measured.dataset_config,
        dataset_split=measured.dataset_split,
    )
    metrics = [
        ("accuracy", "Accuracy (full size)", calibration.full_accuracy),
        ("accuracy", "Accuracy (served by the ICPC cascade)", served_accuracy),
        ("cost", f"Cascade cost (share of full-size {unit})", cost),
    ]
    evals = [
        EvalResult(
            task_type=pipeline_tag,
            task_name=task,
            metric_type=kind,
            metric_name=name,
            metric_value=round(float(value), 6),
            **dataset,
        )
        for kind, name, value in metrics
    ]
    where = "Measured on " + (f"{measured.dataset_name}" if measured.dataset_type != "custom" else "the evaluation set")
    where += f" ({measured.dataset_split})" if measured.dataset_split else ""
    table = "| measure | value |\n|---|---|\n" + "\n".join(lines)
    return evals, f"{where} at the end of training.\n\n{table}\n\n{frontier_table(calibration)}"


def frontier_table(calibration: Any) -> str:
    """Every cascade no other beats on both accuracy and cost: what a user may serve instead, and its price."""
    unit = "measured time" if calibration.cost_unit == "time" else "estimated FLOPs"
    rows = [
        f"| {', '.join(f'{lv:g}' for lv in p.levels)} | {', '.join(f'{t:g}' for t in p.thresholds) or '-'} | "
        f"{p.accuracy:.4f} | {p.cost:.3g} | {1 / p.cost:.2f}x |"
        for p in calibration.frontier()
    ]
    return (
        f"Served frontier (cost: share of a full-size pass, {unit}):\n\n"
        "| levels | thresholds | accuracy | cost | speedup |\n|---|---|---|---|---|\n" + "\n".join(rows)
    )


def render_model_card(
    icpc: ICPCConfig,
    repo_id: str = "path/to/this/folder",
    model_name: str | None = None,
    results: str | None = None,
    measured: Measured | None = None,
    **card_data: Any,
) -> ModelCard:
    """A Hub model card: tags, the ICPC settings, a usage that runs, and `measured` results in `model-index`.

    The pipeline tag, the task, the descriptions and the example input come from the registration of the modality of
    `icpc.model_type`; `results` (Markdown) is added below the measured ones.
    """
    registration = registration_for(icpc.model_type)
    title = model_name or f"{icpc.model_type} {registration.classifier_description} with ICPC"
    evals, table = results_of(measured, registration.modality.task, registration.pipeline_tag)
    setup, example_input = EXAMPLE_INPUTS.get(registration.modality.name, ("inputs = ...  # your inputs\n\n", "inputs"))
    tags = ["icpc", "icpc-hf", "input-compression", registration.modality.name]
    extra_tags = card_data.pop("tags", None) or []
    tags += [tag for tag in ([extra_tags] if isinstance(extra_tags, str) else extra_tags) if tag not in tags]
    defaults = dict(library_name="transformers", pipeline_tag=registration.pipeline_tag, eval_results=evals or None)
    data = ModelCardData(tags=tags, model_name=title if evals else None, **{**defaults, **card_data})
    return ModelCard.from_template(
        data,
        template_str=TEMPLATE,
        model_name=title,
        model_type=icpc.model_type,
        task=registration.task,
        task_description=registration.classifier_description,
        modality_description=registration.compression_description,
        levels=", ".join(f"{lv:.3g}" for lv in icpc.levels or []),
        position_strategy=icpc.position_strategy,
        cascade_levels=", ".join(f"{lv:.3g}" for lv in icpc.cascade_levels or []),
        thresholds=icpc.thresholds,
        uncompressed_last_epochs=icpc.uncompressed_last_epochs,
        repo_id=repo_id,
        example_setup=setup,
        example_input=example_input,
        results_table=table,
        results=results,
    )
