"""The model card's text, as a Jinja template (`TEMPLATE`), and the per-modality input its usage example makes:
model_card.py fills it with what the model is and what was measured."""

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
Consistency; Nagarajan & Raghunathan, ECML PKDD 2024, [arXiv 2312.12385](https://arxiv.org/abs/2312.12385))
using [icpc_hf](https://pypi.org/project/icpc-hf/). Its weights are those of an ordinary Transformers model; what
ICPC adds is how it answers: a cascade runs each input compressed first ({{ modality_description }}) and runs
again, larger, only the inputs it is unsure of. Every answer says which level gave it.

## How to use

Without icpc_hf, the pipeline code stored in this repository serves the cascade (read it first: it runs on
your machine):

```python
{{ example_setup }}from transformers import pipeline

classifier = pipeline(model="{{ repo_id }}", trust_remote_code=True)
print(classifier({{ example_input }}, top_k=1))
```

With icpc_hf installed (`pip install icpc-hf`), its own code serves the model and no remote code is run:

```python
{{ example_setup }}import icpc_hf
from transformers import pipeline

classifier = pipeline("{{ task }}", model="{{ repo_id }}")
print(classifier({{ example_input }}, top_k=1))
```

Every answer carries the level that gave it, its token count and its cost. Thresholds and levels can be set per
call: `classifier(inputs, thresholds=0.8, levels=[0.5, 1.0])`.

## Training

Every training sample was compressed by a level drawn anew each epoch, with positions consistent with the
uncompressed input, so the unchanged Transformer processes it; fewer tokens make steps cheaper, and seeing each
sample at many sizes is an augmentation.

| setting | value |
|---|---|
| training levels (share of the full size kept) | {{ levels }} |
| schedule of the levels over the run | {{ schedule }} |
| position strategy | {{ position_strategy }} |
| uncompressed last epochs | {{ uncompressed_last_epochs }} |
{{ training_rows }}
Framework versions: icpc_hf {{ versions.icpc_hf }}, transformers {{ versions.transformers }}, torch {{ versions.torch }}.
The full settings are in `config.json` under `icpc`.

## Evaluation

{{ evaluation }}

As served, `config.json` holds this cascade:

| setting | value |
|---|---|
| cascade levels | {{ cascade_levels }} |
| cascade thresholds | {{ thresholds }} |
{% if results %}
## More results

{{ results }}
{% endif %}"""
