"""Cascade calibration per modality: thresholds chosen on a validation split, the cascade then measured on test.

    python benchmarks/calibration.py [--modalities image text video] [--max-accuracy-loss 0.005]

Trains the ICPC model of each task once (seed 0, the settings of benchmarks/run.py), chooses the cheapest
thresholds whose validation accuracy is within `--max-accuracy-loss` of full-size inference
(`icpc_hf.calibrate.calibrate_thresholds`), and measures that cascade against full-size inference on the test
set at the same batch size (median of 3 timings). Writes benchmarks/results/calibration-<modality>.json and the
accuracy/cost frontier as docs/images/frontier-<modality>.png.
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from run import HERE, accuracy_at, load_task, timed_median, train_once

from icpc_hf.calibrate import calibrate_thresholds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modalities", nargs="+", default=["image", "text", "video"])
    parser.add_argument("--max-accuracy-loss", type=float, default=0.005)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=os.path.join(HERE, "results"))
    parser.add_argument("--plots", default=os.path.join(HERE, "..", "docs", "images"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.plots, exist_ok=True)
    for name in args.modalities:
        task = load_task(name, args.quick)
        if task.validation is None:
            print(f"{name}: no validation split, skipped")
            continue
        run = train_once(task, 0, task.icpc, os.path.join("/tmp", "icpc-bench", "calibration", name))
        model = run["model"]
        validation_labels = [f["label"] for f in task.validation]
        calibration = calibrate_thresholds(model, task.validation, task.processor, validation_labels,
                                           max_accuracy_loss=args.max_accuracy_loss, batch_size=task.batch_size)
        calibration.plot(os.path.join(args.plots, f"frontier-{name}.png"))
        labels = torch.tensor([f["label"] for f in task.test])
        full_accuracy, _ = accuracy_at(model, task, [1.0], labels)
        if calibration.chosen is None:
            result = {"modality": name, "chosen": None}
        else:
            calibration.apply(model)
            cascade_accuracy, cascade = accuracy_at(model, task, None, labels)
            full_seconds = timed_median(lambda: accuracy_at(model, task, [1.0], labels))
            cascade_seconds = timed_median(lambda: accuracy_at(model, task, None, labels))
            result = {
                "modality": name, "max_accuracy_loss": args.max_accuracy_loss, "levels": calibration.levels,
                "thresholds": calibration.chosen.thresholds,
                "validation": {"full_accuracy": calibration.full_accuracy, "cascade_accuracy": calibration.chosen.accuracy,
                               "cost": calibration.chosen.cost},
                "test": {"full_accuracy": full_accuracy, "cascade_accuracy": cascade_accuracy,
                         "full_seconds": full_seconds, "cascade_seconds": cascade_seconds,
                         "speedup": full_seconds / cascade_seconds,
                         "flops_ratio": cascade.summary()["flops_ratio"],
                         "answered": {k: v for k, v in cascade.summary().items() if k.startswith("answered_at_")}},
                "frontier": [vars(p) for p in calibration.frontier()],
            }
        print(json.dumps(result)[:600], flush=True)
        suffix = "-quick" if args.quick else ""
        with open(os.path.join(args.output, f"calibration-{name}{suffix}.json"), "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
