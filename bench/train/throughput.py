"""Steady-state throughput of a Lightning run, measured from batch to batch."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytorch_lightning as pl

WARMUP_BATCHES = 3
"""Batches skipped at the start of every epoch (worker start-up, allocator and kernel warm-up)."""
WINDOW_BATCHES = 5
"""Steady-state batches per window: the meter keeps one rate per window of this many consecutive
batches after the warm-up (a window never spans two epochs; an epoch's unfinished window is left out)."""


class _Meter:
    """Images and seconds between consecutive batch ends: the steady-state total after the warm-up
    of every epoch, and one rate per window of :data:`WINDOW_BATCHES` steady-state batches."""

    def __init__(self) -> None:
        self.images = 0
        self.seconds = 0.0
        self.fallback_images = 0
        self.fallback_seconds = 0.0
        self.batches = 0
        """Every batch seen, warm-up included, over all epochs."""
        self.timed_batches = 0
        """The steady-state batches (after each epoch's warm-up) in :attr:`images` and :attr:`seconds`."""
        self.windows: list[float] = []
        """Images/s of each complete window, in order."""
        self._last: float | None = None
        self._seen = 0
        self._reset_window()

    def start_epoch(self) -> None:
        self._last = time.perf_counter()
        self._seen = 0
        self._reset_window()

    def _reset_window(self) -> None:
        self._window_images, self._window_seconds, self._window_batches = 0, 0.0, 0

    def batch_end(self, images: int) -> None:
        now = time.perf_counter()
        self.batches += 1
        if self._last is None:
            self._last = now
            return
        elapsed, self._last = now - self._last, now
        self._seen += 1
        self.fallback_images += images
        self.fallback_seconds += elapsed
        if self._seen <= WARMUP_BATCHES:
            return
        self.images += images
        self.seconds += elapsed
        self.timed_batches += 1
        self._window_images += images
        self._window_seconds += elapsed
        self._window_batches += 1
        if self._window_batches == WINDOW_BATCHES:
            if self._window_seconds > 0:
                self.windows.append(self._window_images / self._window_seconds)
            self._reset_window()

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` spent since the last batch end out of the next batch's interval (work
        done between two batches that is not part of the loop, e.g. a paired model-only step)."""
        if self._last is not None:
            self._last += seconds

    def steady_images_per_s(self) -> float | None:
        """Images/s over every steady-state batch (``None`` before the first one)."""
        if self.seconds > 0 and self.images > 0:
            return self.images / self.seconds
        return None

    def images_per_s(self) -> float | None:
        """Steady-state rate; falls back to every batch when runs are too short for a steady state."""
        steady = self.steady_images_per_s()
        if steady is not None:
            return steady
        if self.fallback_seconds > 0 and self.fallback_images > 0:
            return self.fallback_images / self.fallback_seconds
        return None

    def summary(self, prefix: str, scale: float = 1.0) -> dict[str, Any]:
        """``{prefix}_images_per_s``: the median of the window rates (without a complete window, the
        steady-state rate, else every batch's), ``_min``/``_max``: the slowest and the fastest window
        (``None`` without one), ``{prefix}_windows``: how many; rates times ``scale`` (the processes)."""
        if self.windows:
            median: float | None = statistics.median(self.windows)
            low, high = min(self.windows), max(self.windows)
        else:
            median, low, high = self.images_per_s(), None, None

        def rate(value: float | None) -> float | None:
            return None if value is None else round(value * scale, 3)

        return {
            f"{prefix}_images_per_s": rate(median),
            f"{prefix}_images_per_s_min": rate(low),
            f"{prefix}_images_per_s_max": rate(high),
            f"{prefix}_windows": len(self.windows),
        }


def _batch_images(batch: Any) -> int:
    return int(batch[0].shape[0])


class ThroughputMeter(pl.Callback):
    """Images per second in training and in evaluation (test loop), end to end: the time between
    consecutive batch ends, data loading included, after :data:`WARMUP_BATCHES` per epoch, as a
    total and per window of :data:`WINDOW_BATCHES` batches."""

    def __init__(self) -> None:
        self.train = _Meter()
        self.eval = _Meter()

    def record(self, world_size: int = 1) -> dict[str, Any]:
        """What ``result.json`` keeps under ``throughput``: per stage the median window rate and the
        slowest and fastest window, summed over ``world_size`` processes, and how they were measured."""
        return {
            **self.train.summary("train", world_size),
            **self.eval.summary("eval", world_size),
            "warmup_batches": WARMUP_BATCHES,
            "window_batches": WINDOW_BATCHES,
            "measured": (
                f"steady state, end to end (data loading included), all processes: median (min, max) over windows "
                f"of {WINDOW_BATCHES} batches after {WARMUP_BATCHES} warm-up batches per epoch"
            ),
        }

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.train.start_epoch()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.train.batch_end(_batch_images(batch))

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.eval.start_epoch()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # noqa: ANN001
        self.eval.batch_end(_batch_images(batch))
