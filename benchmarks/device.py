"""What ICPC costs and saves on an accelerator: training throughput per level against plain training, the share of
each step spent collating (CPU path against device path, with and without DataLoader workers), the cascade's
throughput per level, and peak device memory. Random weights from the models' configs, synthetic data, no download.

    python benchmarks/device.py                     # ViT-B/16 224 px, AST (1024 x 128), VideoMAE-base 16 x 224
    python benchmarks/device.py --quick             # tiny configs, a few steps: keeps the harness working (CI)
    python benchmarks/device.py --output DIR        # writes DIR/device.json and DIR/device.md

The full run is sized to finish within about 8 minutes on one GPU; it uses bf16 autocast where the GPU supports
it (fp16 otherwise, none on CPU). Step loops are the Trainer's step (forward, backward, optimizer step) without
its bookkeeping, so the figures isolate the model and the data pipeline. docs/guides/device.md has the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time

import torch
from torch.utils.data import DataLoader

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

from _shared import timed_pair  # noqa: E402

from icpc_hf import ICPCConfig, ICPCDataCollator, LevelPlan, patch_model, run_cascade  # noqa: E402


def models(quick: bool) -> dict:
    """name -> (model factory, one synthetic sample's input key and shape)."""
    from transformers import (
        ASTConfig,
        ASTForAudioClassification,
        VideoMAEConfig,
        VideoMAEForVideoClassification,
        ViTConfig,
        ViTForImageClassification,
    )

    small = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) if quick else {}
    vit = ViTConfig(image_size=64 if quick else 224, patch_size=16, num_labels=10, **small)
    ast = ASTConfig(max_length=128 if quick else 1024, num_mel_bins=32 if quick else 128, num_labels=10, **small)
    video = VideoMAEConfig(num_frames=4 if quick else 16, image_size=64 if quick else 224, num_labels=10, **small)
    return {
        "vit": (lambda: ViTForImageClassification(vit), "pixel_values", (3, vit.image_size, vit.image_size)),
        "ast": (lambda: ASTForAudioClassification(ast), "input_values", (ast.max_length, ast.num_mel_bins)),
        "videomae": (
            lambda: VideoMAEForVideoClassification(video),
            "pixel_values",
            (video.num_frames, 3, video.image_size, video.image_size),
        ),
    }


def precision(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Timed:
    """A step loop's wall time, and the part of it spent waiting for the next batch (collating)."""

    def __init__(self):
        self.total = self.waiting = 0.0


def train_steps(model, loader, steps: int, device, dtype, timed: Timed | None = None) -> float:
    """Samples per second of `steps` training steps (after one warm-up step)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(enabled=dtype is torch.float16)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    iterator, samples, start = iter(loader), 0, None
    for step in range(steps + 1):
        tick = time.perf_counter()
        batch = next(iterator)
        waited = time.perf_counter() - tick
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with autocast:
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if step == 0:  # warm-up: allocator, kernels
            synchronize(device)
            start = time.perf_counter()
            continue
        samples += len(batch["labels"])
        if timed is not None:
            timed.waiting += waited
    synchronize(device)
    elapsed = time.perf_counter() - start
    if timed is not None:
        timed.total = elapsed
    return samples / elapsed


def dataset(key: str, shape: tuple, count: int) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    return [{key: torch.randn(shape, generator=generator), "label": i % 10} for i in range(count)]


def plain_collate(key):
    return lambda features: {
        key: torch.stack([f[key] for f in features]),
        "labels": torch.tensor([f["label"] for f in features]),
    }


def collate_cost(icpc, data: list[dict], key: str, batch: int, levels: list[float], repeats: int = 5) -> dict:
    """CPU seconds per sample the collator spends at each level, against a plain Trainer's collate (stacking), on the
    CPU path and the device path (median of `repeats` passes over the same batches; collation is CPU work wherever
    the model runs). The device path's target: at most 1.1x the plain collate at every level."""
    batches = [data[i : i + batch] for i in range(0, len(data), batch)]

    def per_sample(collate) -> float:
        times = []
        for _ in range(repeats):
            tick = time.process_time()
            for features in batches:
                collate(features)
            times.append((time.process_time() - tick) / len(data))
        return sorted(times)[len(times) // 2]

    plain = per_sample(plain_collate(key))
    cost = {"plain_us_per_sample": plain * 1e6, "cpu_path": {}, "device_path": {}}
    for level in levels:
        for path, flag in (("cpu_path", False), ("device_path", True)):
            collator = ICPCDataCollator(None, icpc, level=level, resize_on_device=flag)
            cost[path][f"{level:g}"] = per_sample(collator) / plain
    return cost


def serving_overhead(model, features: list[dict], key: str, batch: int, device, repeats: int) -> dict:
    """What the cascade path costs beyond the model: samples/s of a plain batched forward pass of the patched model
    (stack, move, forward, argmax) against `run_cascade` at full size alone (the pipeline's path for a model shipped
    with full size alone), timed alternately by the examples' `timed_pair`, median of `repeats`."""

    def plain() -> None:
        with torch.inference_mode():
            for start in range(0, len(features), batch):
                inputs = torch.stack([f[key] for f in features[start : start + batch]]).to(device)
                model(**{key: inputs}).logits.argmax(-1).cpu()

    def cascade() -> None:
        run_cascade(model, features, None, levels=[1.0], batch_size=batch)

    def synchronized(job):
        return lambda: (job(), synchronize(device))

    plain(), cascade()  # warm-up
    synchronize(device)
    plain_seconds, cascade_seconds = timed_pair(synchronized(plain), synchronized(cascade), repeats)
    return {
        "plain_samples_per_s": len(features) / plain_seconds,
        "cascade_full_size_samples_per_s": len(features) / cascade_seconds,
        "cascade_over_plain": plain_seconds / cascade_seconds,
    }


def bench_model(
    name: str, factory, key: str, shape: tuple, device, dtype, steps: int, batch: int, workers: int, quick: bool
) -> dict:
    torch.manual_seed(0)
    data = dataset(key, shape, batch * (steps + 1))
    result: dict = {"input": list(shape), "batch_size": batch, "steps": steps}

    def loader(collate, num_workers=0):
        return DataLoader(data, batch_size=batch, collate_fn=collate, num_workers=num_workers)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    plain = factory().to(device).train()
    result["plain_samples_per_s"] = train_steps(plain, loader(plain_collate(key)), steps, device, dtype)
    if device.type == "cuda":
        result["plain_peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    del plain
    icpc = ICPCConfig()
    model = patch_model(factory(), icpc).to(device).train()
    levels = [lv for i, lv in enumerate(icpc.levels) if quick is False or i % 2 == 0 or lv == 1.0]
    on_device = device.type != "cpu"
    result["per_level_samples_per_s"] = {}
    for level in levels:
        collator = ICPCDataCollator(None, icpc, level=level, resize_on_device=on_device)
        result["per_level_samples_per_s"][f"{level:g}"] = train_steps(model, loader(collator), steps, device, dtype)
    mix = {}
    for path, flag in (("cpu_path", False), ("device_path", True)):
        for num_workers in sorted({0, workers}):
            timed = Timed()
            collate = LevelPlan(icpc, 1).bind(ICPCDataCollator(None, icpc, resize_on_device=flag))
            speed = train_steps(model, loader(collate, num_workers), steps, device, dtype, timed)
            mix[f"{path}_{num_workers}_workers"] = {
                "samples_per_s": speed,
                "collate_share": timed.waiting / timed.total,
            }
    result["default_mix"] = mix
    result["collate_cost"] = collate_cost(icpc, data, key, batch, levels)
    if device.type == "cuda":
        result["icpc_peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    model.eval()
    cascade = {}
    features = [{key: sample[key]} for sample in data[: batch * 2]]
    result["serving_overhead"] = serving_overhead(model, features, key, batch, device, repeats=1 if quick else 3)
    for level in levels:
        cascade_levels = [level, 1.0] if level < 1.0 else [1.0]
        synchronize(device)
        tick = time.perf_counter()
        run_cascade(model, features, None, levels=cascade_levels, thresholds=0.0, batch_size=batch)
        synchronize(device)
        cascade[f"{level:g}"] = len(features) / (time.perf_counter() - tick)
    result["cascade_samples_per_s"] = cascade
    return result


def markdown(report: dict) -> str:
    lines = [
        f"Device: {report['device']} ({report['precision']}), {'quick' if report['quick'] else 'full'} run, "
        f"{report['seconds']:.0f} s.",
        "",
        "| model | plain samples/s | ICPC per level, samples/s | default mix, samples/s (collate share): CPU path "
        "0 / N workers, device path 0 / N workers | cascade per level, samples/s |",
        "|---|---|---|---|---|",
    ]
    for name, r in report["models"].items():
        levels = ", ".join(f"{lv}: {v:.1f}" for lv, v in r["per_level_samples_per_s"].items())
        mix = " / ".join(f"{v['samples_per_s']:.1f} ({v['collate_share']:.0%})" for v in r["default_mix"].values())
        cascade = ", ".join(f"{lv}: {v:.1f}" for lv, v in r["cascade_samples_per_s"].items())
        lines.append(f"| {name} | {r['plain_samples_per_s']:.1f} | {levels} | {mix} | {cascade} |")
    lines += [
        "",
        "Collation CPU time per sample against a plain Trainer's collate (stacking), per level: CPU path / device path "
        "(target for the device path: at most 1.1x at every level).",
        "",
        "| model | plain collate, us per sample | per level: CPU path / device path |",
        "|---|---|---|",
    ]
    for name, r in report["models"].items():
        cost = r["collate_cost"]
        cells = [f"{lv}: {cost['cpu_path'][lv]:.2f}x / {cost['device_path'][lv]:.2f}x" for lv in cost["cpu_path"]]
        lines.append(f"| {name} | {cost['plain_us_per_sample']:.1f} | " + ", ".join(cells) + " |")
    lines += [
        "",
        "Serving overhead: a model shipped with full size alone, through `run_cascade`, against a plain batched forward "
        "pass: "
        + ", ".join(f"{n} {r['serving_overhead']['cascade_over_plain']:.2f}x" for n, r in report["models"].items())
        + " of the plain pass's speed.",
    ]
    memory = {n: (r.get("plain_peak_memory_mb"), r.get("icpc_peak_memory_mb")) for n, r in report["models"].items()}
    if any(v[0] is not None for v in memory.values()):
        lines += [
            "",
            "Peak device memory, MiB (plain / ICPC): "
            + ", ".join(f"{n} {a:.0f} / {b:.0f}" for n, (a, b) in memory.items()),
        ]
    else:
        lines += ["", f"Peak process memory (CPU, max RSS): {report['max_rss_mb']:.0f} MiB."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny configs and a few steps (CI, CPU)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "device"))
    parser.add_argument("--models", default="vit,ast,videomae")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="the N of the collate-share runs")
    args = parser.parse_args()
    start = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = precision(device)
    steps = args.steps or (2 if args.quick else 10)
    batch = args.batch_size or (4 if args.quick else 32)
    workers = args.workers if args.workers is not None else (1 if args.quick else min(8, os.cpu_count() or 1))
    report = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)",
        "precision": str(dtype).replace("torch.", "") if dtype else "float32",
        "quick": args.quick,
        "torch": torch.__version__,
        "models": {},
    }
    for name, (factory, key, shape) in models(args.quick).items():
        if name not in args.models.split(","):
            continue
        clip = len(shape) == 4  # (frames, channels, height, width): 1568 tokens a full-size clip
        size = max(1, batch // 4) if clip and not args.quick else batch
        report["models"][name] = bench_model(name, factory, key, shape, device, dtype, steps, size, workers, args.quick)
        print(f"{name}: done after {time.perf_counter() - start:.0f} s", flush=True)
    report["seconds"] = time.perf_counter() - start
    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "device.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    table = markdown(report)
    with open(os.path.join(args.output, "device.md"), "w") as handle:
        handle.write(table)
    print(table)


if __name__ == "__main__":
    main()
