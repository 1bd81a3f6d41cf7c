"""Model cards for ICPC-finetuned models, laid out as Hub cards are: what the model is, how to call it (a usage that
runs as written), what it was trained with, and what was measured.

Results go in the Hub's metadata (`model-index`, through `huggingface_hub.EvalResult`) and in tables, with the served
frontier's plot beside the card when matplotlib is installed; a card whose results were asked for but never measured
says so instead of showing numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..config import ICPCConfig
from ..registry import registration_for
from ..version import __version__
from .calibrate import Calibration
from .card_template import EXAMPLE_INPUTS, TEMPLATE


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


FRONTIER_PLOT = "frontier.png"
"""The served frontier's plot, written beside the card (README.md) when there is a calibration and matplotlib."""


def training_rows(measured: Measured | None) -> list[str]:
    """The training table's rows of what training measured: tokens and estimated FLOPs, against full size."""
    totals = (measured.train_totals if measured else None) or {}
    rows = []
    if totals.get("full_tokens"):
        rows.append(
            f"| training tokens | {totals['tokens']:,.0f} of {totals['full_tokens']:,.0f} at full size "
            f"({1 - totals['tokens'] / totals['full_tokens']:.1%} fewer) |"
        )
    if totals.get("full_flops"):
        rows.append(
            f"| estimated training FLOPs saved | {1 - totals['flops'] / totals['full_flops']:.1%} "
            f"(encoder forward passes, {totals['samples']:,.0f} samples) |"
        )
    return rows


def results_of(
    measured: Measured | None, task: str, pipeline_tag: str, frontier_plot: str | None = None
) -> tuple[list[EvalResult], str]:
    """The card's `model-index` entries and its evaluation section; a sentence saying why when nothing was
    measured."""
    if measured is None:
        return [], "Not reported: the card was written without training measurements."
    calibration = measured.calibration
    if calibration is None:
        return [], (
            "| measure | value |\n|---|---|\n"
            f"| accuracy | **not measured**: {measured.missing or 'no evaluation set'} |"
        )
    chosen = calibration.chosen
    served_accuracy, cost = (chosen.accuracy, chosen.cost) if chosen else (calibration.full_accuracy, 1.0)
    served = f"levels {', '.join(f'{lv:g}' for lv in chosen.levels)}" if chosen else "full size alone"
    unit = "time" if calibration.cost_unit == "time" else "FLOPs"
    lines = [
        f"| accuracy at full size | {calibration.full_accuracy:.4f} |",
        f"| accuracy as served by the cascade ({served}) | {served_accuracy:.4f} |",
        f"| cascade cost | {cost:.3g} of a full-size pass ({1 / cost:.2f}x less {unit}) |",
    ]
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
    return evals, f"{where} at the end of training.\n\n{table}\n\n{frontier_table(calibration, frontier_plot)}"


def frontier_table(calibration: Any, plot: str | None = None) -> str:
    """Every cascade no other beats on both accuracy and cost: what a user may serve instead, and its price; with
    the plot of every setting measured when one was written (`plot`: its file name beside the card)."""
    unit = "measured time" if calibration.cost_unit == "time" else "estimated FLOPs"
    rows = [
        f"| {', '.join(f'{lv:g}' for lv in p.levels)} | {', '.join(f'{t:g}' for t in p.thresholds) or '-'} | "
        f"{p.accuracy:.4f} | {p.cost:.3g} | {1 / p.cost:.2f}x |"
        for p in calibration.frontier()
    ]
    figure = (
        f"![Accuracy against cost of every cascade setting measured; the frontier and the one served]({plot})"
        if plot
        else f"(No plot: matplotlib was not installed where this card was written; with it, {FRONTIER_PLOT} is "
        "drawn beside the card.)"
    )
    return (
        f"### Served frontier\n\nCost: share of a full-size pass, {unit}.\n\n"
        "| levels | thresholds | accuracy | cost | speedup |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\n{figure}"
    )


def code_or_default(setting: str | None) -> str:
    """A setting as code, or what an unresolved one (None) means: `patch_model` resolves it per model."""
    return f"`{setting}`" if setting else "the model's default"


def framework_versions() -> dict[str, str]:
    import torch
    import transformers

    return {"icpc_hf": __version__, "transformers": transformers.__version__, "torch": torch.__version__}


def write_frontier_plot(measured: Measured | None, folder: str | os.PathLike) -> str | None:
    """Draw the calibration's frontier to FRONTIER_PLOT in `folder`; its file name, or None when there is no
    calibration or no matplotlib (the card then says so, and shows the table alone)."""
    if measured is None or measured.calibration is None:
        return None
    try:
        import matplotlib  # noqa: F401  (optional: the examples' extra installs it)
    except ImportError:
        return None
    measured.calibration.plot(os.path.join(folder, FRONTIER_PLOT))
    return FRONTIER_PLOT


def save_model_card(
    folder: str | os.PathLike, icpc: ICPCConfig, measured: Measured | None = None, **card_arguments: Any
) -> ModelCard:
    """README.md in `folder` (`render_model_card`'s card) and, beside it, the frontier's plot it shows."""
    card = render_model_card(
        icpc, measured=measured, frontier_plot=write_frontier_plot(measured, folder), **card_arguments
    )
    card.save(os.path.join(folder, "README.md"))
    return card


def render_model_card(
    icpc: ICPCConfig,
    repo_id: str = "path/to/this/folder",
    model_name: str | None = None,
    results: str | None = None,
    measured: Measured | None = None,
    frontier_plot: str | None = None,
    **card_data: Any,
) -> ModelCard:
    """A Hub model card: what the model is, a usage that runs as written, what it was trained with, and what was
    measured (in `model-index` too): the served cascade and its frontier, as a table and, given `frontier_plot`
    (a file beside the card: `save_model_card` draws it), a plot.

    The pipeline tag, the task, the descriptions and the example input come from the registration of the modality of
    `icpc.model_type`; `results` (Markdown) is added below the measured ones.
    """
    registration = registration_for(icpc.model_type)
    title = model_name or f"{icpc.model_type} {registration.classifier_description} with ICPC"
    evals, evaluation = results_of(measured, registration.modality.task, registration.pipeline_tag, frontier_plot)
    rows = training_rows(measured)
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
        schedule=code_or_default(icpc.schedule),
        position_strategy=code_or_default(icpc.position_strategy),
        training_rows="".join(row + "\n" for row in rows),
        versions=framework_versions(),
        cascade_levels=", ".join(f"{lv:.3g}" for lv in icpc.cascade_levels or []),
        thresholds=icpc.thresholds,
        uncompressed_last_epochs=icpc.uncompressed_last_epochs,
        repo_id=repo_id,
        example_setup=setup,
        example_input=example_input,
        evaluation=evaluation,
        results=results,
    )
