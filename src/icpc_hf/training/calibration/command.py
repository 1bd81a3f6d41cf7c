"""`icpc-calibrate`: calibrate a saved ICPC model's cascade on a saved dataset, from the command line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from . import thresholds
from .thresholds import calibrate_thresholds
from .timing import COST_UNITS


def main(argv: Sequence[str] | None = None) -> None:
    """`icpc-calibrate MODEL_DIR DATA_DIR` (or `python -m icpc_hf.training.calibrate`): calibrate a saved ICPC model on a
    saved dataset."""
    parser = argparse.ArgumentParser(prog="icpc-calibrate", description=thresholds.__doc__.splitlines()[0])
    parser.add_argument("model", help="folder or Hub id of a model saved with its ICPC settings and processor")
    parser.add_argument("data", help="a datasets folder (save_to_disk) with the model's input features and labels")
    parser.add_argument("--split", default=None, help="split of a DatasetDict (default: validation, else test)")
    parser.add_argument("--label-column", default="label")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--max-accuracy-loss", type=float, help="absolute, e.g. 0.003 for 0.3 points")
    target.add_argument("--target-speedup", type=float)
    target.add_argument("--min-accuracy", type=float, help="the cheapest setting at least this accurate")
    parser.add_argument("--levels", type=float, nargs="+", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--cost",
        choices=COST_UNITS,
        default="time",
        help="what a cascade's cost counts: measured time on this machine, or estimated FLOPs",
    )
    parser.add_argument("--plot", default=None, help="write the accuracy/cost frontier to this PNG")
    parser.add_argument("--save", action="store_true", help="write the chosen thresholds into the model's config")
    args = parser.parse_args(argv)

    import datasets
    from transformers import AutoConfig, AutoProcessor

    from ...patching import patch_model
    from ...registry import registration_for

    data = datasets.load_from_disk(args.data)
    if isinstance(data, datasets.DatasetDict):
        split = args.split or ("validation" if "validation" in data else "test")
        data = data[split]
    config = AutoConfig.from_pretrained(args.model)
    model = registration_for(config).auto_model.from_pretrained(args.model)
    patch_model(model)
    processor = AutoProcessor.from_pretrained(args.model)
    result = calibrate_thresholds(
        model,
        data,
        processor,
        data[args.label_column],
        levels=args.levels,
        max_accuracy_loss=args.max_accuracy_loss,
        target_speedup=args.target_speedup,
        min_accuracy=args.min_accuracy,
        batch_size=args.batch_size,
        cost=args.cost,
    )
    report = {
        "levels": result.levels,
        "full_accuracy": result.full_accuracy,
        "cost_unit": result.cost_unit,
        "chosen": None if result.chosen is None else vars(result.chosen),
        "frontier": [vars(p) for p in result.frontier()],
    }
    print(json.dumps(report, indent=2))
    if args.plot:
        result.plot(args.plot)
    if args.save and result.chosen is not None:
        config.icpc = result.apply(model).config.icpc
        config.save_pretrained(args.model)
    if result.chosen is None:
        raise SystemExit("No threshold setting meets the target; see the frontier above.")


if __name__ == "__main__":
    main()
