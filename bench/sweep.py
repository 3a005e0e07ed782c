"""The loop every protocol's sweep shares (:func:`sweep`), the run folder a run claims
(:func:`claimed_run_dir`) and the finished record ``--resume`` keeps (:func:`complete_record`):
what the fine-tuning and the frozen runners share."""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import torch

from bench.shard import WHOLE, Shard
from bench.store import RUN_LOCK_FILE, RunRecord, locked, read_record
from bench.train.experiment import is_global_zero
from bench.weights import Weights

log = logging.getLogger(__name__)

OnRecord = Callable[[RunRecord], None]
"""Called with every finished record of a sweep, on rank 0 (e.g. to rebuild the leaderboard)."""


@contextlib.contextmanager
def claimed_run_dir(out_dir: Path, base: str) -> Iterator[Path]:
    """The run folder ``base``, locked for the duration. Where another live sweep holds
    ``<base>``, the next free ``<base>~2``, ``<base>~3``, ...: concurrent sweeps of one model lose
    no record. Only rank 0 locks (the only writer); the other ranks use the plain name."""
    if not is_global_zero():
        yield out_dir / base
        return
    for k in itertools.count(1):
        run_dir = out_dir / (base if k == 1 else f"{base}~{k}")
        run_dir.mkdir(parents=True, exist_ok=True)
        with locked(run_dir / RUN_LOCK_FILE, wait=False) as held:
            if held:
                if k > 1:
                    log.warning("%s is in use by another sweep: this run writes to %s", out_dir / base, run_dir)
                yield run_dir
                return


def complete_record(run_dir: Path, expected_hash: str) -> RunRecord | None:
    """The run's finished ``ok`` record if it was made with the same config, else ``None``."""
    record = read_record(run_dir)
    if record is not None and record.ok and record.config_hash == expected_hash:
        return record
    return None


def sweep(
    models: Sequence[str],
    *,
    seeds: Sequence[int],
    weights: Mapping[str, Weights],
    baseline: Callable[[], RunRecord] | None,
    run_one: Callable[[str, int, Weights], RunRecord],
    on_record: OnRecord | None,
    shard: Shard = WHOLE,
) -> list[RunRecord]:
    """The loop every protocol's sweep shares: ``baseline()`` if given, then ``run_one(model, seed,
    weights)`` for every model, all models of a seed before the next seed. Each finished record
    goes to ``on_record`` on rank 0 as soon as it is stored.

    With a ``shard`` other than the whole sweep, only that shard's share of the (model, seed) runs
    in that order (``bench.shard``: run ``i`` to shard ``i mod N``), and the baseline only in shard 0.
    """
    missing = [m for m in models if m not in weights]
    if missing:
        raise ValueError(f"no resolved weights for {missing}")
    runs = shard_runs(models, seeds, shard)
    if not shard.is_whole:
        log.info("shard %s: %d of the sweep's %d run(s): %s", shard, len(runs), len(models) * len(seeds),
                 ", ".join(f"{m} seed {s}" for m, s in runs) or "none")
        if baseline is not None and not shard.runs_baseline:
            log.info("shard %s: the prior baseline runs in shard 0", shard)
            baseline = None

    def finished(record: RunRecord) -> RunRecord:
        if on_record is not None and is_global_zero():
            on_record(record)
        return record

    records = [finished(baseline())] if baseline is not None else []
    for model_name, seed in runs:
        records.append(finished(run_one(model_name, seed, weights[model_name])))
        gc.collect()  # the finished model's trainer, module and loaders hold reference cycles
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return records


def shard_runs(models: Sequence[str], seeds: Sequence[int], shard: Shard = WHOLE) -> list[tuple[str, int]]:
    """The (model, seed) runs of a sweep in the order it makes them, all models of a seed before
    the next seed, and of those the ones ``shard`` runs."""
    return shard.take([(model_name, seed) for seed in seeds for model_name in models])
