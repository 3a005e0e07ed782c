"""The data pipeline alone: how many images per second our DataLoader delivers, and how many workers
a model's rate needs (part of ``python benchmark.py speed``).

A measurement iterates the protocol's real train or eval loader (JPEG decode, resize, augmentation
for training, crops, normalisation, collation) with nothing consuming the batches, so its rate is
what the workers produce. The rate of one worker is the per-worker rate; the rates with 2, 3, ...
workers show how it scales with cores. ``workers_needed`` divides a model's rate by the per-worker
rate: the workers (and so the CPU cores) it takes to keep that model fed.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tabulate import tabulate

from bench.data import DataSource
from bench.protocols.settings import FrozenProtocol, Protocol
from bench.speed.cycled import cycle_loaders
from bench.train.experiment import TrainerOptions, build_datamodule
from bench.train.throughput import WARMUP_BATCHES
from voc.constants import IMAGENET_MEAN, IMAGENET_STD
from voc.datamodule import available_cores

STAGES: tuple[str, ...] = ("train", "eval")
"""``train``: the training loader (augmentation, ``batch_size``); ``eval``: the eval loader (no
augmentation, ``eval_batch_size``), which is also the frozen protocols' feature-extraction view when
the protocol's crops are ``full``."""


def default_data_workers() -> list[int]:
    """The worker counts the data-only meter measures by default: 1 up to every core (at most 16)."""
    return list(range(1, min(16, available_cores()) + 1))


def loader_images_per_s(
    loader: Iterable, *, steps: int, warmup: int, consume: Callable[[Any], int] | None = None,
    between: Callable[[bool], float] | None = None,
) -> float:
    """Images/s of ``loader`` over ``steps`` batches after ``warmup`` batches, each batch handed to
    ``consume`` (which returns its images; ``None``: only counted). After each batch, ``between``
    (if given) is called with whether that batch was timed and returns seconds to leave out of the
    figure (a paired model-only step: ``bench.speed.paired``). The loader must yield at least
    ``warmup + steps`` batches of ``(indices, crops, targets)``; its workers are shut down after."""
    batches = iter(loader)
    try:
        for _ in range(warmup):
            batch = next(batches)
            if consume is not None:
                consume(batch)
            if between is not None:
                between(False)
        images, left_out = 0, 0.0
        started = time.perf_counter()
        for _ in range(steps):
            batch = next(batches)
            images += consume(batch) if consume is not None else len(batch[0])  # indices: crops may be bytes
            if between is not None:
                left_out += between(True)
        return images / (time.perf_counter() - started - left_out)
    finally:
        del batches  # shuts the workers down


def data_only_images_per_s(
    protocol: Protocol, data: DataSource, options: TrainerOptions, *, stage: str, workers: int, steps: int
) -> float:
    """Images/s the ``stage`` loader delivers with ``workers`` worker processes (0: the main process
    alone), timed over ``steps`` batches after ``WARMUP_BATCHES + workers`` warm-up batches (each
    worker's first batch carries its start-up); a split with fewer batches is cycled. Nothing consumes
    the batches, so no prefetched batch piles up: each one timed is one the workers made in the window.
    Normalised with ImageNet's mean/std and bilinear resampling (a backbone's own cost the same)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; valid values are {list(STAGES)}")
    warmup = WARMUP_BATCHES + workers
    datamodule = cycle_loaders(build_datamodule(protocol, data, replace(options, num_workers=workers), IMAGENET_MEAN,
                                                IMAGENET_STD, "bilinear"), warmup + steps)
    datamodule.setup("fit" if stage == "train" else "test")
    loader = datamodule.train_dataloader() if stage == "train" else datamodule.test_dataloader()
    return loader_images_per_s(loader, steps=steps, warmup=warmup)


def data_only_row(
    stage: str, workers: int, protocol: Protocol | FrozenProtocol, rates: Sequence[float], steps: int, warmup: int,
    shape: str,
) -> dict[str, Any]:
    """One loader's measurement: the median of ``rates`` with its min and max, per worker, and every repeat."""
    median = statistics.median(rates)
    return {
        "stage": stage,
        "workers": workers,
        "decode": protocol.decode,
        "shape": shape,
        "warmup_steps": warmup,
        "timed_steps": steps,
        "images_per_s": round(median, 3),
        "images_per_s_min": round(min(rates), 3),
        "images_per_s_max": round(max(rates), 3),
        "per_worker_images_per_s": round(median / max(1, workers), 3),
        "repeats": [round(r, 3) for r in rates],
    }


def measure_data_only(
    protocol: Protocol,
    data: DataSource,
    options: TrainerOptions,
    *,
    steps: int,
    repeats: int,
    workers: Sequence[int],
) -> list[dict[str, Any]]:
    """One row per (stage, worker count) (:func:`data_only_row`)."""
    rows = []
    for stage in STAGES:
        for count in workers:
            rates = [data_only_images_per_s(protocol, data, options, stage=stage, workers=count, steps=steps)
                     for _ in range(repeats)]
            rows.append(data_only_row(stage, count, protocol, rates, steps, WARMUP_BATCHES + count,
                                      _shape(protocol, stage)))
    return rows


def _shape(protocol: Protocol, stage: str) -> str:
    config = protocol.transform_config()
    batch = protocol.batch_size if stage == "train" else protocol.eval_batch_size
    side = config.input_size
    view = "whole image" if config.crop_mode == "full" else f"resize {config.resize}, {config.crop_mode} crop"
    return f"batch {batch} x {config.num_crops} x 3 x {side} x {side} ({view})"


def per_worker_rate(rows: Sequence[Mapping[str, Any]], stage: str) -> float | None:
    """The rate one worker delivers for ``stage``: the 1-worker row's median, else the best per-worker
    rate measured (``None`` without a row)."""
    stage_rows = [r for r in rows if r["stage"] == stage and r["workers"] >= 1]
    if not stage_rows:
        return None
    one = [r for r in stage_rows if r["workers"] == 1]
    return float(one[0]["images_per_s"]) if one else max(float(r["per_worker_images_per_s"]) for r in stage_rows)


def workers_needed(rate: float, per_worker: float) -> int:
    """Workers that deliver ``rate`` images/s at ``per_worker`` each, if they scale linearly."""
    if per_worker <= 0:
        raise ValueError(f"the per-worker rate must be positive, got {per_worker}")
    return max(1, math.ceil(rate / per_worker))


def data_only_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The data-only rows as a GitHub markdown table: median (min–max) over the repeats."""
    body = []
    for r in rows:
        spread = f" ({r['images_per_s_min']:.1f}–{r['images_per_s_max']:.1f})" if len(r["repeats"]) > 1 else ""
        body.append([r["stage"], r["shape"], r["decode"], str(r["workers"]), f"{r['images_per_s']:.1f}{spread}",
                     f"{r['per_worker_images_per_s']:.1f}"])
    return tabulate(body, headers=["loader", "shape", "decode", "workers", "img/s data-only", "img/s per worker"],
                    tablefmt="github", disable_numparse=True)


def feed_rows(
    model_rows: Sequence[Mapping[str, Any]], data_rows: Sequence[Mapping[str, Any]], target_rate: float | None = None
) -> list[dict[str, Any]]:
    """For each model's model-only train and eval rate (and ``target_rate`` where given): the workers
    that keep it fed at the measured per-worker rate of the matching loader."""
    wanted: list[tuple[str, str, float]] = []
    if target_rate is not None:
        wanted += [("--target-rate", stage, target_rate) for stage in STAGES]
    seen = set()
    for row in model_rows:
        if "error" in row or row["model"] in seen:
            continue
        seen.add(row["model"])
        wanted += [(row["model"], stage, row[f"model_only_{stage}_images_per_s"]) for stage in STAGES
                   if f"model_only_{stage}_images_per_s" in row]  # feature extraction has no train side
    out = []
    for who, stage, rate in wanted:
        per_worker = per_worker_rate(data_rows, stage)
        if per_worker is None:
            continue
        out.append({"rate_of": who, "stage": stage, "images_per_s": round(float(rate), 3),
                    "per_worker_images_per_s": round(per_worker, 3),
                    "workers_needed": workers_needed(float(rate), per_worker)})
    return out


def feed_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """:func:`feed_rows` as a GitHub markdown table."""
    body = [[r["rate_of"], r["stage"], f"{r['images_per_s']:.1f}", f"{r['per_worker_images_per_s']:.1f}",
             str(r["workers_needed"])] for r in rows]
    return tabulate(body, headers=["rate of", "loader", "img/s to feed", "img/s per worker", "workers needed"],
                    tablefmt="github", disable_numparse=True)
