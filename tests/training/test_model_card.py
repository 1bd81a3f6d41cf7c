"""The model card reads as a Hub card: what the model is, how to call it, what it was trained with, and the served
frontier as a table and, where matplotlib is installed, a plot beside the card."""

import re
import sys

import pytest
import torch
import transformers
from huggingface_hub import ModelCard

import icpc_hf
from icpc_hf import ICPCConfig
from icpc_hf.training.calibrate import Calibration, CascadePoint
from icpc_hf.training.model_card import FRONTIER_PLOT, Measured, save_model_card

ICPC = ICPCConfig(model_type="vit", levels=[0.5, 0.75, 1.0], cascade_levels=[0.5, 1.0], thresholds=[0.8])
POINTS = [
    CascadePoint([], 0.90, 1.0, [1.0]),
    CascadePoint([0.8], 0.89, 0.55, [0.5, 1.0]),
    CascadePoint([0.6], 0.80, 0.40, [0.5, 1.0]),
    CascadePoint([0.9], 0.85, 0.70, [0.75, 1.0]),  # beaten by the 0.55 setting on both counts: off the frontier
]
MEASURED = Measured(
    calibration=Calibration([0.5, 0.75, 1.0], 0.90, POINTS, POINTS[1], cost_unit="time"),
    train_totals={"samples": 64, "tokens": 1200, "full_tokens": 4096, "flops": 1.0, "full_flops": 3.0},
)


def sections(card: str) -> list[str]:
    return re.findall(r"^## (.+)$", card, flags=re.M)


def test_the_card_says_what_the_model_is_how_to_call_it_how_it_was_trained_and_what_it_measured(tmp_path):
    pytest.importorskip("matplotlib")  # installed with the examples extra (.ci/setup); without it, the test below
    save_model_card(tmp_path, ICPC, MEASURED, repo_id="someone/model", model_name="tiny-vit fine-tuned with ICPC")
    card = ModelCard.load(tmp_path / "README.md").text
    assert sections(card) == ["How to use", "Training", "Evaluation"]
    assert card.splitlines()[1] == "# tiny-vit fine-tuned with ICPC"
    assert "A vit image classifier fine-tuned with **ICPC**" in card.split("## How to use")[0]
    training = card.split("## Training")[1].split("## Evaluation")[0]
    assert "| training levels (share of the full size kept) | 0.5, 0.75, 1 |" in training
    assert "| training tokens | 1,200 of 4,096 at full size (70.7% fewer) |" in training
    assert "| estimated training FLOPs saved | 66.7% " in training
    versions = f"icpc_hf {icpc_hf.__version__}, transformers {transformers.__version__}, torch {torch.__version__}"
    assert versions in training
    evaluation = card.split("## Evaluation")[1]
    frontier = evaluation.split("### Served frontier")[1]
    rows = [line for line in frontier.splitlines() if re.match(r"\| [0-9.]+(, [0-9.]+)* \|", line)]
    assert rows == [
        "| 0.5, 1 | 0.6 | 0.8000 | 0.4 | 2.50x |",
        "| 0.5, 1 | 0.8 | 0.8900 | 0.55 | 1.82x |",
        "| 1 | - | 0.9000 | 1 | 1.00x |",
    ]
    assert f"]({FRONTIER_PLOT})" in frontier
    assert (tmp_path / FRONTIER_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| cascade levels | 0.5, 1 |" in evaluation and "| cascade thresholds | [0.8] |" in evaluation


def test_without_matplotlib_the_card_keeps_the_table_and_says_why_there_is_no_plot(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    save_model_card(tmp_path, ICPC, MEASURED, repo_id="someone/model")
    card = (tmp_path / "README.md").read_text()
    assert "### Served frontier" in card and "| 0.5, 1 | 0.8 | 0.8900 | 0.55 | 1.82x |" in card
    assert "No plot: matplotlib was not installed" in card and f"]({FRONTIER_PLOT})" not in card
    assert not (tmp_path / FRONTIER_PLOT).exists()


def test_without_a_calibration_there_is_no_frontier_and_no_plot(tmp_path):
    measured = Measured(train_totals=MEASURED.train_totals, missing="no evaluation set in this test")
    save_model_card(tmp_path, ICPC, measured, repo_id="someone/model")
    card = (tmp_path / "README.md").read_text()
    assert "| accuracy | **not measured**: no evaluation set in this test |" in card
    assert "Served frontier" not in card and not (tmp_path / FRONTIER_PLOT).exists()
    assert "| training tokens | 1,200 of 4,096" in card
