"""Runs the protocol on each backbone and stores one record per run; failures become records.

A sweep hands every finished record to a callback (the command line rebuilds the leaderboard
there), so training never imports the reporting side.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench.data import DataSource
from bench.hardware import environment, peak_rss_mb, reset_peak_rss
from bench.prior_baseline import new_record, run_prior_baseline
from bench.protocol import Protocol, config_hash
from bench.shard import WHOLE, Shard
from bench.store import (
    CHECKPOINT_DIR,
    RUN_CONFIG_FILE,
    RUN_LOCK_FILE,
    RunRecord,
    locked,
    protocol_run_dir_name,
    read_record,
    write_json_atomic,
    write_run,
)
from bench.train.experiment import TrainerOptions, build_experiment, is_global_zero
from bench.weights import Weights

log = logging.getLogger(__name__)

OnRecord = Callable[[RunRecord], None]
"""Called with every finished record of a sweep, on rank 0 (e.g. to rebuild the leaderboard)."""


def run_model(
    model_name: str,
    *,
    protocol: Protocol,
    data: DataSource,
    out_dir: str | Path,
    weights: Weights,
    pretrained: str = "auto",
    options: TrainerOptions = TrainerOptions(),
    command: str | None = None,
    resume: bool = False,
) -> RunRecord:
    """Train and evaluate one backbone from ``weights``; returns its record (``ok`` or ``failed``).

    ``pretrained`` is the user's choice that ``weights`` were resolved from (``auto``, ``imagenet``,
    ``none`` or a file): part of the config hash. Any exception (out of memory, a non-finite loss,
    ...) is caught and recorded with its message, so a sweep can go on. With ``resume``, a complete
    record of the same config (protocol, data, model, weights choice) is kept as it is, and an
    interrupted run of the same config continues from its last epoch checkpoint.
    """
    with claimed_run_dir(Path(out_dir), protocol_run_dir_name(model_name, protocol.seed, protocol.name)) as run_dir:
        return _run_model_in(
            run_dir, model_name, protocol=protocol, data=data, weights=weights, pretrained=pretrained,
            options=options, command=command, resume=resume,
        )


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


def _run_model_in(
    run_dir: Path,
    model_name: str,
    *,
    protocol: Protocol,
    data: DataSource,
    weights: Weights,
    pretrained: str,
    options: TrainerOptions,
    command: str | None,
    resume: bool,
) -> RunRecord:
    record = new_record(model_name, protocol, data, command)
    record.config_hash = config_hash({"model": model_name, "pretrained": pretrained}, protocol.to_dict(),
                                     record.dataset)
    if resume:
        previous = complete_record(run_dir, record.config_hash)
        if previous is not None:
            log.info("%s: complete record of the same config in %s, skipped (--resume)", model_name, run_dir)
            return previous
    checkpoint = _resumable_checkpoint(run_dir, record.config_hash) if resume else None
    if is_global_zero():
        write_json_atomic(run_dir / RUN_CONFIG_FILE, {"config_hash": record.config_hash})
    started = time.perf_counter()
    reset_peak_rss()
    ids: list[str] | None = None
    scores: np.ndarray | None = None
    labels: np.ndarray | None = None
    try:
        record.weights = weights.description
        if weights.sha256 is not None:
            record.weights_sha256 = weights.sha256
        experiment = build_experiment(model_name, protocol=protocol, data=data, weights=weights, options=options,
                                      run_dir=run_dir)
        module, datamodule, trainer, meter = (
            experiment.module, experiment.datamodule, experiment.trainer, experiment.meter
        )
        record.environment = environment(experiment.accelerator, experiment.precision)
        record.params = experiment.params
        log.info("%s: %s, %s, %d parameters", model_name, weights.description, experiment.precision, record.params)
        train_started = time.perf_counter()
        if checkpoint is not None:
            log.info("%s: resuming from %s (--resume)", model_name, checkpoint)
        trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
        eval_started = time.perf_counter()
        trainer.test(module, datamodule=datamodule, verbose=False)
        finished = time.perf_counter()
        output = module.eval_output
        if output is None or module.eval_metrics is None:
            raise RuntimeError("evaluation produced no predictions (is the eval split empty?)")
        assert datamodule.eval_set is not None
        ids = [datamodule.eval_set.ids[i] for i in output.indices]
        scores, labels = output.scores, output.labels
        record.status = "ok"
        record.metrics = module.eval_metrics  # the protocol's declared report_model, whatever the other scored
        if len(module.eval_results) > 1:  # the EMA too: its headline metrics beside the raw model's
            record.extra["eval_models"] = module.eval_summary()
        record.throughput = meter.record(trainer.world_size)
        record.wall_time_s = {
            "setup": round(train_started - started, 3),
            "train": round(eval_started - train_started, 3),
            "eval": round(finished - eval_started, 3),
        }
        record.dataset.update(n_train_images=len(datamodule.train_set or []), n_eval_images=len(datamodule.eval_set))
    except Exception as err:  # noqa: BLE001 - one model's failure must not stop the sweep
        record.error = f"{type(err).__name__}: {err}"
        ids = scores = labels = None
        log.error("%s failed: %s", model_name, record.error)
        log.debug("%s", traceback.format_exc())
    record.wall_time_s = {**(record.wall_time_s or {}), "total": round(time.perf_counter() - started, 3)}
    record.peak_rss_mb = peak_rss_mb()
    if is_global_zero():
        write_run(run_dir, record, ids, scores, labels)
    return record


def complete_record(run_dir: Path, expected_hash: str) -> RunRecord | None:
    """The run's finished ``ok`` record if it was made with the same config, else ``None``."""
    record = read_record(run_dir)
    if record is not None and record.ok and record.config_hash == expected_hash:
        return record
    return None


def _resumable_checkpoint(run_dir: Path, expected_hash: str) -> Path | None:
    """``checkpoints/last.ckpt`` of an interrupted run with the same config, if there is one."""
    checkpoint = run_dir / CHECKPOINT_DIR / "last.ckpt"
    try:
        started = json.loads((run_dir / RUN_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if started.get("config_hash") != expected_hash or not checkpoint.is_file():
        return None
    if not zipfile.is_zipfile(checkpoint):  # torch.save writes a zip; a write cut short by a kill is not one
        log.warning("%s is damaged (cut short?): training that model from the start", checkpoint)
        return None
    return checkpoint


def run_sweep(
    models: Sequence[str],
    *,
    protocol: Protocol,
    data: DataSource,
    out_dir: str | Path,
    weights: Mapping[str, Weights],
    pretrained: str = "auto",
    options: TrainerOptions = TrainerOptions(),
    command: str | None = None,
    baseline: bool = True,
    resume: bool = False,
    seeds: Sequence[int] | None = None,
    on_record: OnRecord | None = None,
    shard: Shard = WHOLE,
) -> list[RunRecord]:
    """The prior baseline (optional), then every model once per seed (``seeds``, default the
    protocol's one seed), all models of a seed before the next seed. ``weights`` maps each model
    to what it starts from (resolved up front, ``bench.weights.resolve_weights``). Each finished
    record goes to ``on_record`` on rank 0 as soon as it is stored. ``shard``: only this shard's
    share of the runs (see :func:`sweep`)."""
    return sweep(
        models,
        seeds=seeds if seeds else [protocol.seed],
        weights=weights,
        baseline=(lambda: run_prior_baseline(protocol=protocol, data=data, out_dir=out_dir, command=command))
        if baseline
        else None,
        run_one=lambda model_name, seed, model_weights: run_model(
            model_name,
            protocol=replace(protocol, seed=seed),
            data=data,
            out_dir=out_dir,
            weights=model_weights,
            pretrained=pretrained,
            options=options,
            command=command,
            resume=resume,
        ),
        on_record=on_record,
        shard=shard,
    )


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
