"""``python benchmark.py speed`` with a frozen protocol: feature extraction, model-only against end to end.

Model-only times the frozen backbone's pooled features (``bench.frozen.runner.pooled_features``) on
random tensors of the view's shape; end to end times the same encoder fed by our real loader of the
eval split (decode, resize, normalise, collate, copy to the device, the mean over crops back on the
CPU), at the same batch, precision and layout, compiled or not by the run's own rule
(``bench.frozen.compiled``). Both over ``steps`` batches after the warm-up, repeated. On the CPU the
model alone runs one step after every end-to-end batch with the loader's workers stopped
(``bench.speed.paired``); elsewhere it is timed half before and half after end to end
(``bench.speed.training.bracketed_rates``). The data pipeline alone is measured on the same loader
(``bench.speed.data``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from bench.data import DataSource
from bench.frozen.runner import FrozenOptions, build_encoder, build_extractor, frozen_datamodule, loader_arrangement
from bench.hardware import autocast, autocast_dtype, resolve_accelerator, resolve_precision
from bench.protocols.settings import FrozenProtocol
from bench.speed.cycled import cycle_loaders
from bench.speed.data import data_only_row, loader_images_per_s
from bench.speed.paired import PairedModelOnly, can_pair
from bench.speed.training import (
    RANDOM_INIT,
    aggregate_repeats,
    bracketed_rates,
    model_only_timing,
    rounded,
    with_ratios,
)
from bench.train.throughput import WARMUP_BATCHES

log = logging.getLogger(__name__)


def measure_extraction_speed(
    model_name: str,
    *,
    protocol: FrozenProtocol,
    data: DataSource,
    options: FrozenOptions,
    steps: int,
    repeats: int,
) -> dict[str, Any]:
    """One row: model-only and end-to-end feature-extraction images/s of the eval split's view, each
    the median of ``repeats`` repeats with its min and max, their ratio, and every repeat; compiled
    or eager as a real run on these splits would be (``options.compile``)."""
    accelerator = resolve_accelerator(options.accelerator)
    precision = resolve_precision(protocol.precision, accelerator)
    extractor, _ = build_extractor(model_name, RANDOM_INIT, protocol, accelerator, precision)
    workers, threads = loader_arrangement(options, accelerator)
    datamodule = frozen_datamodule(protocol, data, extractor.transform, train_split=protocol.train_split,
                                   eval_split=protocol.eval_split, num_workers=workers, loader_threads=threads)
    cycle_loaders(datamodule, WARMUP_BATCHES + steps)
    datamodule.setup("fit")
    assert datamodule.train_set is not None and datamodule.eval_set is not None
    images = len(datamodule.train_set) + len(datamodule.eval_set)  # what a real run extracts
    encode, decision = build_encoder(extractor, protocol, options.compile, images)
    crops = extractor.transform.num_crops
    size = protocol.input_size
    dtype = autocast_dtype(precision)
    device = extractor.device

    def pooled(flat: torch.Tensor, batch: int) -> None:
        with torch.inference_mode(), autocast(device, dtype):
            features = encode(flat)
        features.float().reshape(batch, crops, -1).mean(dim=1).cpu()

    flat = torch.randn(protocol.batch_size * crops, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last)
    model_only = {"eval": (protocol.batch_size, lambda: pooled(flat, protocol.batch_size))}

    def end_to_end(paired: PairedModelOnly | None = None) -> float:
        def consume(batch: Any) -> int:
            _, images_crops, _ = datamodule.prepare_eval_batch(batch, device)  # decode="device": decoded here
            n = images_crops.shape[0]
            pooled(images_crops.flatten(0, 1).to(device).contiguous(memory_format=torch.channels_last), n)
            return n

        between = None if paired is None else (lambda timed: paired.step("eval", timed))
        return loader_images_per_s(datamodule.test_dataloader(), steps=steps, warmup=WARMUP_BATCHES,
                                   consume=consume, between=between)

    pairing = can_pair(accelerator)
    measured = []
    for repeat in range(repeats):
        log.info("%s: extraction speed repeat %d of %d", model_name, repeat + 1, repeats)
        if pairing:  # a model-only step after every end-to-end batch, the workers stopped
            paired = PairedModelOnly(model_only)
            e2e = end_to_end(paired)
            model_rate = paired.images_per_s("eval")
        else:  # half before and half after end to end (bracketed_rates)
            before = model_only_timing(model_only, steps - steps // 2, device)
            e2e = end_to_end()
            after = model_only_timing(model_only, steps // 2, device) if steps > 1 else {}
            model_rate = bracketed_rates(before, after)["eval"]
        measured.append(with_ratios({
            "model_only_eval_images_per_s": model_rate,
            "e2e_eval_images_per_s": e2e,
            "model_only_threads": torch.get_num_threads(),
            "e2e_threads": torch.get_num_threads(),
        }))
    repeats_kept = [rounded(r) for r in measured]
    return {
        "model": model_name,
        "precision": precision,
        "shape": f"batch {protocol.batch_size} x {crops} x 3 x {size} x {size} (the {protocol.name} view)",
        "workers": workers,
        "model_only_threads": torch.get_num_threads(),
        "e2e_threads": torch.get_num_threads(),
        "warmup_steps": WARMUP_BATCHES,
        "timed_steps": steps,
        "model_only_timing": "paired" if pairing else "bracketed",
        "compile": decision.to_dict(),
        **aggregate_repeats(repeats_kept),
        "repeats": repeats_kept,
    }


def extraction_data_only(
    protocol: FrozenProtocol, data: DataSource, options: FrozenOptions, *, steps: int, repeats: int,
    workers: list[int], transform: Any,
) -> list[dict[str, Any]]:
    """The view's eval loader alone with each worker count (``bench.speed.data`` rows, stage ``eval``)."""
    rows = []
    for count in workers:
        rates = []
        for _ in range(repeats):
            datamodule = frozen_datamodule(protocol, data, transform, train_split=protocol.train_split,
                                           eval_split=protocol.eval_split, num_workers=count)
            cycle_loaders(datamodule, WARMUP_BATCHES + count + steps)
            datamodule.setup("test")
            rates.append(loader_images_per_s(datamodule.test_dataloader(), steps=steps,
                                             warmup=WARMUP_BATCHES + count))
        rows.append(data_only_row("eval", count, protocol, rates, steps, WARMUP_BATCHES + count,
                                  f"batch {protocol.batch_size} x {transform.num_crops} x 3 x {protocol.input_size} x "
                                  f"{protocol.input_size} (the {protocol.name} view)"))
    return rows

