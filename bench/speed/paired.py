"""Model-only steps paired with end-to-end steps, so the two are timed at the same moment.

This project's shared CPU VMs change speed by 10-40 % from one few-second stretch to the next
(a fixed ResNet-50 forward took 0.29-0.69 s over one minute, with no steal time), so a model-only
figure taken even seconds away from an end-to-end one does not give their ratio to a few percent.
Here the model alone runs one step right after each end-to-end step, on its own copy of the model
and on random tensors, and the DataLoader workers are stopped (``SIGSTOP``) while it runs.

Stopping the workers is what keeps the pairing fair: they get the CPU only during end-to-end steps,
exactly as in a plain end-to-end run, so their cost (decoding, and on a machine with few cores the
compute they take from the model) falls on the end-to-end steps alone, neither more nor less; and
the model-only step runs with nothing beside it, as the model-only figure should. It needs a
synchronous device (the CPU: on CUDA, pausing between steps would drain the queue that overlaps
data loading with compute) and POSIX signals; elsewhere the speed meters time the model alone
before and after the end-to-end run instead (``bench.speed.training.bracketed_rates``).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import pytorch_lightning as pl

from bench.hardware import torch_threads
from bench.train.throughput import ThroughputMeter

ModelOnlyStep = tuple[int, Callable[[], None]]
"""(images, one model-only step on fixed random tensors)."""


def can_pair(accelerator: str) -> bool:
    """Whether model-only steps can be paired with end-to-end ones: a CPU run on a POSIX system."""
    return accelerator == "cpu" and hasattr(signal, "SIGSTOP")


@contextmanager
def paused_workers() -> Iterator[None]:
    """Stop every live child process of this one started by :mod:`multiprocessing` (the DataLoader
    workers) for the block, and let them go on after it, also when the block raises."""
    stopped = []
    try:
        for child in multiprocessing.active_children():
            if child.pid is not None:
                try:
                    os.kill(child.pid, signal.SIGSTOP)
                except ProcessLookupError:  # it ended in between
                    continue
                stopped.append(child.pid)
        yield
    finally:
        for pid in stopped:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


class PairedModelOnly:
    """After each end-to-end step of a stage, one model-only step of that stage (workers paused,
    ``threads`` compute threads); the pairs of timed end-to-end steps give the model-only rate."""

    def __init__(self, steps: Mapping[str, ModelOnlyStep], threads: int | None = None) -> None:
        self.steps = dict(steps)
        self.threads = threads
        self.images = {stage: 0 for stage in self.steps}
        self.seconds = {stage: 0.0 for stage in self.steps}
        self.timed_steps = {stage: 0 for stage in self.steps}

    def step(self, stage: str, timed: bool) -> float:
        """Run one model-only step of ``stage``, counted when ``timed``; returns every second the
        pairing spent (pausing, thread switches and the step), for the end-to-end meter to leave out."""
        images, run = self.steps[stage]
        started = time.perf_counter()
        with paused_workers(), torch_threads(self.threads):
            step_started = time.perf_counter()
            run()
            step_seconds = time.perf_counter() - step_started
        if timed:
            self.images[stage] += images
            self.seconds[stage] += step_seconds
            self.timed_steps[stage] += 1
        return time.perf_counter() - started

    def images_per_s(self, stage: str) -> float | None:
        """Model-only images/s over the timed steps of ``stage`` (``None`` before the first)."""
        seconds = self.seconds[stage]
        return self.images[stage] / seconds if seconds > 0 else None


class PairedModelOnlyCallback(pl.Callback):
    """Runs :class:`PairedModelOnly` after every training and test batch, timed when ``meter``
    timed that batch, and leaves its time out of the meter's next interval. It must come after
    ``meter`` in the trainer's callbacks, so the meter has recorded the batch's end first."""

    def __init__(self, meter: ThroughputMeter, paired: PairedModelOnly) -> None:
        self.meter = meter
        self.paired = paired
        self._timed = {"train": 0, "eval": 0}

    def _after(self, stage: str) -> None:
        stage_meter = self.meter.train if stage == "train" else self.meter.eval
        timed = stage_meter.timed_batches > self._timed[stage]
        self._timed[stage] = stage_meter.timed_batches
        stage_meter.exclude(self.paired.step(stage, timed))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._after("train")

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._after("eval")
