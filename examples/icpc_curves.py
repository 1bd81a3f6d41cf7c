"""Plot the icpc/ figures a Trainer logged to TensorBoard (run an example with `--report-to tensorboard` first).

    python examples/icpc_curves.py outputs/demo/icpc/runs --output docs/results/images/demo-icpc-tensorboard.png

`tensorboard --logdir outputs/demo` shows the same curves interactively; this draws them to a PNG without a browser.
"""

from __future__ import annotations

import argparse
import glob
import os


def scalars(run_dir: str) -> dict[str, tuple[list[int], list[float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True))
    if not files:
        raise SystemExit(f"No TensorBoard event file under {run_dir}: run an example with --report-to tensorboard.")
    events = EventAccumulator(files[-1])
    events.Reload()
    return {
        tag: ([e.step for e in events.Scalars(tag)], [e.value for e in events.Scalars(tag)])
        for tag in events.Tags()["scalars"]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="the Trainer's TensorBoard folder, e.g. outputs/demo/icpc/runs")
    parser.add_argument("--output", default="icpc_curves.png")
    args = parser.parse_args()
    logged = scalars(args.run_dir)
    panels = [
        ("train/loss", "training loss"),
        ("train/icpc/token_ratio", "icpc/token_ratio"),
        ("train/icpc/flops_saved", "icpc/flops_saved"),
    ]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(10, 2.8))
    for axis, (tag, title) in zip(axes, panels):
        steps, values = logged.get(tag, ([], []))
        axis.plot(steps, values, color="C1")
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
    figure.tight_layout()
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
