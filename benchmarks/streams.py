"""Text from a stream: what losing length grouping costs ICPC's pruning, measured against the map-style paths.

    python benchmarks/streams.py            # MiniLM on the fortune texts, 3 repeats; its table in docs/results/streams.md
    python benchmarks/streams.py --quick    # seconds: keeps the harness working (CI)
    python benchmarks/streams.py --report-only    # the docs table again, from benchmarks/results/streams/

A stream (`datasets` streaming, `to_iterable_dataset`) cannot group batches by length: the Trainer's
`group_by_length` needs every length before the first step. ICPC prunes words per batch either way, but a batch
pads to its longest text, so the padding that grouping removed comes back. Each data path trains the same model
from the same weights for the same steps with `ICPCConfig(schedule="constant")` (and the plain Trainer beside it:
the default schedule moves with the steps in a stream and not within one epoch), and a forward hook
counts the tokens the model computes (padded) and the real ones (attention mask). The runs alternate, repeated;
step times are medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from harness import RESULT_DOCS, RESULTS, ROOT, splice, training_args
from tasks import text_task
from transformers import Trainer, TrainerCallback

from icpc_hf import ICPCCallback, ICPCConfig, ICPCDataCollator, patch_model

TEXT_RESULTS = os.path.join(RESULTS, "streams", "text.json")
DOC = os.path.join(RESULT_DOCS, "streams.md")
PATHS = {
    "map-style, grouped by length": {"stream": False, "group": True},
    "map-style, random batches": {"stream": False, "group": False},
    "stream (4 shards, shuffled with a buffer)": {"stream": True, "group": False},
}


class TokenCount(TrainerCallback):
    """Tokens the model computes per training batch (padded) and those it keeps (mask), and each step's time."""

    def __init__(self, model):
        self.padded = self.real = self.batches = 0
        self.step_seconds: list[float] = []
        self._start = None
        model.register_forward_pre_hook(self.count, with_kwargs=True)

    def count(self, module, args, kwargs):
        if module.training:
            mask = kwargs["attention_mask"]
            self.padded += mask.numel()
            self.real += int(mask.sum())
            self.batches += 1

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds.append(time.perf_counter() - self._start)


def train_path(task, path: dict, icpc: bool, steps: int, seed: int) -> dict:
    import datasets

    model = task.new_model(seed)
    collator = task.baseline_collator
    callbacks = []
    if icpc:
        # The constant schedule: in a stream the default progressive one moves with the steps and in one epoch
        # of a map-style set it does not, which would mix its effect into the comparison of data paths.
        settings = ICPCConfig(
            seed=seed, schedule="constant", **{k: v for k, v in task.icpc.items() if k == "stop_words"}
        )
        model = patch_model(model, settings)
        collator = ICPCDataCollator(task.processor, settings)
        callbacks.append(ICPCCallback(calibrate=False, publish=False))
    counter = TokenCount(model)
    train = task.train
    if path["stream"]:
        train = datasets.Dataset.from_list(train).to_iterable_dataset(num_shards=4).shuffle(seed=seed, buffer_size=256)
    overrides = {"max_steps": steps, "train_sampling_strategy": "group_by_length" if path["group"] else "random"}
    with tempfile.TemporaryDirectory() as output:
        trainer = Trainer(
            model=model,
            args=training_args(task, output, seed, overrides),
            train_dataset=train,
            data_collator=collator,
            callbacks=[counter, *callbacks],
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "step_ms": 1000 * statistics.median(counter.step_seconds[1:]),
        "padded_per_batch": counter.padded / counter.batches,
        "real_per_batch": counter.real / counter.batches,
    }


def measure(quick: bool, repeats: int) -> dict:
    task = text_task(quick)
    steps = 6 if quick else len(task.train) // task.batch_size
    runs: dict[str, list[dict]] = {}
    for repeat in range(repeats):
        for name, path in PATHS.items():
            for icpc in (False, True):
                key = f"{'ICPC' if icpc else 'plain Trainer'} | {name}"
                runs.setdefault(key, []).append(train_path(task, path, icpc, steps, seed=repeat))
                print(key, runs[key][-1], flush=True)
    return {
        "steps": steps,
        "batch_size": task.batch_size,
        "train_size": len(task.train),
        "repeats": repeats,
        "runs": runs,
    }


def report(results: dict) -> str:
    lines = [
        f"Written by `benchmarks/streams.py` from `{os.path.relpath(TEXT_RESULTS, ROOT)}`. MiniLM "
        f"fine-tuned on {results['train_size']} fortune texts, batch {results['batch_size']}, {results['steps']} "
        f"steps, the same weights for every run; medians of {results['repeats']} alternating repeats on 2 CPU "
        "cores. *Padded tokens*: what the model computes per batch (batch x longest text); *real*: the tokens the "
        "attention mask keeps.",
        "",
        "| trainer | data path | padded tokens / batch | real tokens / batch | padding share | ms / step |",
        "|---|---|---|---|---|---|",
    ]
    for key, runs in results["runs"].items():
        trainer, path = key.split(" | ")
        padded = statistics.median(r["padded_per_batch"] for r in runs)
        real = statistics.median(r["real_per_batch"] for r in runs)
        step = statistics.median(r["step_ms"] for r in runs)
        lines.append(f"| {trainer} | {path} | {padded:.0f} | {real:.0f} | {1 - real / padded:.0%} | {step:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--report-only", action="store_true", help="rewrite the docs table from the saved results")
    args = parser.parse_args(argv)
    if args.report_only:
        with open(TEXT_RESULTS) as handle:
            results = json.load(handle)
    else:
        results = measure(args.quick, 1 if args.quick else args.repeats)
    if args.quick:
        print(report(results))
        return
    if not args.report_only:
        os.makedirs(os.path.dirname(TEXT_RESULTS), exist_ok=True)
        with open(TEXT_RESULTS, "w") as handle:
            json.dump(results, handle, indent=1)
    splice(DOC, "streams", report(results))


if __name__ == "__main__":
    main()
