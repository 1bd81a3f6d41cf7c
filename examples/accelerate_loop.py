"""ICPC in a plain Accelerate training loop (no Trainer): the level plan, the collator (in DataLoader workers), the cascade.

    python examples/accelerate_loop.py                       # one process
    accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \\
        --dynamo_backend no examples/accelerate_loop.py      # two CPU processes (gloo); on GPUs drop --cpu below

On CPU, `accelerate launch --cpu --num_processes 2` silently runs one process: use the command above, which
starts two, with `Accelerator(cpu=True)` here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _shared import accuracy  # noqa: E402
from demo_digits import digits_features, new_model  # noqa: E402

from icpc_hf import ICPCConfig, ICPCDataCollator, LevelPlan, patch_model, run_cascade  # noqa: E402
from icpc_hf.training.calibrate import calibrate_thresholds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes that collate batches")
    args = parser.parse_args()
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    train, validation, test = digits_features(args.seed)
    icpc = ICPCConfig(seed=args.seed)  # the defaults: every level, the smallest allowed rising over the run
    model = patch_model(new_model(args.seed), icpc)
    # Each batch's level is drawn from (seed, epoch, position), in whichever worker collates it: every rank
    # runs the same level at each step.
    collate = LevelPlan(icpc, num_epochs=args.epochs).bind(ICPCDataCollator(None, icpc))
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, collate_fn=collate, num_workers=args.workers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        collate.set_epoch(epoch)  # before iterating: workers start from it
        model.train()
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        accelerator.print(f"epoch {epoch}: loss {loss.item():.3f}")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(model)
        labels = [f["label"] for f in test]
        # An uncalibrated cascade can cost more than full size: calibrate it on held-out data first.
        calibrate_thresholds(
            model, validation, None, [f["label"] for f in validation], max_accuracy_loss=0.0, reference="best_level"
        ).apply(model)
        full = run_cascade(model, test, None, levels=[1.0])
        cascade = run_cascade(model, test, None)
        print(
            f"{accelerator.num_processes} process(es), {time.perf_counter() - start:.1f} s training; "
            f"accuracy full size {accuracy(full.predictions, labels):.4f}, cascade "
            f"{accuracy(cascade.predictions, labels):.4f} at {cascade.summary()['flops_ratio']:.2f} of the FLOPs"
        )


if __name__ == "__main__":
    main()
