"""Does torch.compile help ICPC training, whose batches change shape with their level?

Trains a patched ViT for a number of steps on batches whose level follows the ICPC schedule, in three modes:
eager, `torch.compile(model)` (recompiles when a new shape appears, then after a few marks shapes dynamic) and
`torch.compile(model, dynamic=True)`. Reports wall time, steady-state step time (after every level has been
seen once), the compile time of each level (its first step less the steady step time) and the number of graphs
compiled. Results: docs/results/benchmarks.md (`benchmarks/report.py` reads benchmarks/results/compile.json).

    python benchmarks/compile_levels.py [--steps 120] [--repeats 3]
    python benchmarks/compile_levels.py --quick      # a tiny ViT, a few steps: keeps the script working
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from harness import RESULTS
from tasks import small_vit

from icpc_hf import ICPCConfig, LevelPlan, icpc_settings, patch_model


def train_steps(mode: str, steps: int, batch_size: int, seed: int, quick: bool = False) -> dict:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    icpc = ICPCConfig(levels=[0.5, 0.625, 0.75, 0.875, 1.0], seed=seed, schedule="constant")
    model = patch_model(small_vit(32, 4, 32 if quick else 128, 1 if quick else 4)(seed), icpc)
    levels = LevelPlan(icpc_settings(model)).epoch_levels(0, steps)  # one level per batch, as in training
    if mode == "compile":
        model = torch.compile(model)
    elif mode == "compile-dynamic":
        model = torch.compile(model, dynamic=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step_times, first_steps = [], {}
    start = time.perf_counter()
    for level in levels:
        size = round(level * 8) * 4
        pixels = torch.randn(batch_size, 1, size, size)
        labels = torch.randint(0, 10, (batch_size,))
        tick = time.perf_counter()
        loss = model(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if level in first_steps:
            step_times.append(time.perf_counter() - tick)
        else:
            first_steps[level] = time.perf_counter() - tick
    total = time.perf_counter() - start
    steady = statistics.median(step_times)
    return {
        "mode": mode,
        "total_seconds": total,
        "steady_step_seconds": steady,
        "compile_seconds_per_level": {f"{lv:g}": first - steady for lv, first in sorted(first_steps.items())},
        "graphs": int(counters["stats"].get("unique_graphs", 0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="a tiny ViT, 10 steps of batch 4, once; writes only with --output"
    )
    parser.add_argument("--output", default=None, help="default: benchmarks/results/compile.json (none with --quick)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.repeats = 10, 4, 1
    output = args.output or (None if args.quick else os.path.join(RESULTS, "compile.json"))
    rows = []
    for mode in ("eager", "compile", "compile-dynamic"):
        runs = [train_steps(mode, args.steps, args.batch_size, seed, args.quick) for seed in range(args.repeats)]
        rows.append(
            {
                "mode": mode,
                "total_seconds": statistics.median(r["total_seconds"] for r in runs),
                "steady_step_seconds": statistics.median(r["steady_step_seconds"] for r in runs),
                "compile_seconds_per_level": {
                    lv: statistics.median(r["compile_seconds_per_level"][lv] for r in runs)
                    for lv in runs[0]["compile_seconds_per_level"]
                },
                "graphs": max(r["graphs"] for r in runs),
            }
        )
        print(rows[-1], flush=True)
    if output is None:
        return
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as handle:
        json.dump(
            {"steps": args.steps, "batch_size": args.batch_size, "repeats": args.repeats, "rows": rows},
            handle,
            indent=2,
        )


if __name__ == "__main__":
    main()
