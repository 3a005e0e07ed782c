"""Steady-state throughput of a Lightning run, measured from batch to batch."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl

WARMUP_BATCHES = 3
"""Batches skipped at the start of every epoch (worker start-up, allocator and kernel warm-up)."""


class _Meter:
    def __init__(self) -> None:
        self.images = 0
        self.seconds = 0.0
        self.fallback_images = 0
        self.fallback_seconds = 0.0
        self._last: float | None = None
        self._seen = 0

    def start_epoch(self) -> None:
        self._last = time.perf_counter()
        self._seen = 0

    def batch_end(self, images: int) -> None:
        now = time.perf_counter()
        if self._last is None:
            self._last = now
            return
        elapsed, self._last = now - self._last, now
        self._seen += 1
        self.fallback_images += images
        self.fallback_seconds += elapsed
        if self._seen > WARMUP_BATCHES:
            self.images += images
            self.seconds += elapsed

    def images_per_s(self) -> float | None:
        """Steady-state rate; falls back to every batch when runs are too short for a steady state."""
        if self.seconds > 0 and self.images > 0:
            return self.images / self.seconds
        if self.fallback_seconds > 0 and self.fallback_images > 0:
            return self.fallback_images / self.fallback_seconds
        return None


def _batch_images(batch: Any) -> int:
    return int(batch[0].shape[0])


class ThroughputMeter(pl.Callback):
    """Images per second in training and in evaluation (test loop), end to end: the time between
    consecutive batch ends, data loading included, after :data:`WARMUP_BATCHES` per epoch."""

    def __init__(self) -> None:
        self.train = _Meter()
        self.eval = _Meter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.train.start_epoch()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.train.batch_end(_batch_images(batch))

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.eval.start_epoch()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # noqa: ANN001
        self.eval.batch_end(_batch_images(batch))
