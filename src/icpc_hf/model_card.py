"""Model cards for ICPC-finetuned models, rendered from a template with the model's ICPC settings."""

from __future__ import annotations

from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from .config import ICPCConfig
from .registry import family_for

TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A {{ model_type }} {{ task_description }} fine-tuned with **ICPC** (Input Compression with Positional
Consistency, Nagarajan & Raghunathan, ECML PKDD 2024) using [icpc_hf](https://pypi.org/project/icpc-hf/).
During training every sample was compressed by a random level each epoch ({{ modality_description }}), with
positions consistent with the uncompressed input, so the unchanged Transformer processes it. At inference a
cascade answers with the most compressed input first and re-runs only the samples it is unsure of.

## ICPC settings

| setting | value |
|---|---|
| training levels | {{ levels }} |
| position strategy | `{{ position_strategy }}` |
| cascade levels | {{ cascade_levels }} |
| cascade thresholds | {{ thresholds }} |
| uncompressed last epochs | {{ uncompressed_last_epochs }} |

The full settings are in `config.json` under `icpc`.

## Usage

With icpc_hf installed:

```python
import icpc_hf
from transformers import pipeline

classifier = pipeline("{{ task }}", model="{{ repo_id }}", trust_remote_code=True)
classifier(inputs)  # per input: labels and scores, plus the level that answered and its token count
```

Without icpc_hf, the pipeline code stored in this repository serves the same cascade:

```python
from transformers import pipeline

classifier = pipeline(model="{{ repo_id }}", trust_remote_code=True)
```

Thresholds and levels can be set per call: `classifier(inputs, thresholds=0.8, levels=[0.5, 1.0])`.
{% if results %}
## Results

{{ results }}
{% endif %}
"""

def render_model_card(
    icpc: ICPCConfig,
    repo_id: str = "path/to/this/folder",
    model_name: str | None = None,
    results: str | None = None,
    **card_data: Any,
) -> ModelCard:
    """A Hub model card with library name, tags, the ICPC levels and thresholds, and usage.

    The pipeline tag, the task and the descriptions come from the family of `icpc.model_type`.
    """
    family = family_for(icpc.model_type)
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=family.pipeline_tag,
        tags=["icpc", "icpc-hf", "input-compression", family.modality.name],
        **card_data,
    )
    return ModelCard.from_template(
        data,
        template_str=TEMPLATE,
        model_name=model_name or repo_id.split("/")[-1],
        model_type=icpc.model_type,
        task=family.task,
        task_description=family.classifier_description,
        modality_description=family.compression_description,
        levels=", ".join(f"{lv:.3g}" for lv in icpc.levels or []),
        position_strategy=icpc.position_strategy,
        cascade_levels=", ".join(f"{lv:.3g}" for lv in icpc.cascade_levels or []),
        thresholds=icpc.thresholds,
        uncompressed_last_epochs=icpc.uncompressed_last_epochs,
        repo_id=repo_id,
        results=results,
    )
