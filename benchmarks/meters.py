"""What a benchmark's training run measures besides accuracy: epoch times, collate time, step phases, peak memory.

Each meter is a Trainer callback or a wrapper that records into its own attributes; `harness.train_arm` reads them.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from collections.abc import Callable

import psutil
from transformers import TrainerCallback

from icpc_hf import ICPCDataCollator


class EpochTimer(TrainerCallback):
    """Wall seconds of every epoch."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epoch_seconds.append(time.perf_counter() - self._start)


class TimedCollator:
    """Wraps a collate function and adds up the seconds spent in it."""

    def __init__(self, collate: Callable) -> None:
        self.collate = collate
        self.seconds = 0.0

    def __call__(self, features, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.collate(features, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


class TimedICPCCollator(ICPCDataCollator):
    """ICPCDataCollator that adds up its own seconds (it must stay an ICPCDataCollator for the callback)."""

    seconds = 0.0

    def __call__(self, features, level=None):
        start = time.perf_counter()
        try:
            return super().__call__(features, level)
        finally:
            self.seconds += time.perf_counter() - start


class StepAnatomy(TrainerCallback):
    """Seconds spent in each phase of the Trainer's steps: fetching and collating the batch, forward and backward
    (with gradient clipping), the optimizer step, and the rest (scheduler, zero_grad). The last three do not
    shrink with the input; they show why a speedup falls short of the FLOP reduction."""

    PHASES = ("batch", "forward_backward", "optimizer", "other")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.PHASES, 0.0)
        self.steps = 0
        self._last = 0.0

    def _lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self._last
        self._last = now

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._last = time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):
        self._lap("batch")

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self._lap("forward_backward")

    def on_optimizer_step(self, args, state, control, **kwargs):
        self._lap("optimizer")

    def on_step_end(self, args, state, control, **kwargs):
        self._lap("other")
        self.steps += 1

    def milliseconds_per_step(self) -> dict[str, float]:
        return {phase: 1000 * seconds / max(1, self.steps) for phase, seconds in self.seconds.items()}


class PeakMemory:
    """Peak resident memory above the level at start. Freed heap is handed back to the system first (malloc_trim)
    so a run cannot hide its peak in pages an earlier run left behind; the peak is then the kernel's high-water
    mark (VmHWM, reset through /proc/self/clear_refs), or, where that is unavailable, RSS sampled every 20 ms."""

    def __enter__(self):
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.kernel_peak = self._reset_high_water_mark()
        self.running = not self.kernel_peak
        self.thread = None
        if self.running:
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    @staticmethod
    def _reset_high_water_mark() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def _high_water_mark() -> int:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise OSError("no VmHWM in /proc/self/status")

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.running = False
        if self.thread is not None:
            self.thread.join()
        if self.kernel_peak:
            self.peak = self._high_water_mark()
        self.megabytes = (self.peak - self.start) / 2**20
