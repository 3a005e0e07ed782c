"""Runs the protocol on each backbone and stores one record per run; failures become records.

A sweep hands every finished record to a callback (the command line rebuilds the leaderboard
there), so training never imports the reporting side.
"""

from __future__ import annotations

import json
import logging
import signal
import time
import traceback
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from bench.data import DataSource
from bench.frozen.runner import FEATURE_DIR
from bench.hardware import environment, peak_rss_mb, reset_peak_rss, resolve_accelerator
from bench.model import CropMaxClassifier, DataConfig
from bench.prior_baseline import new_record, run_prior_baseline
from bench.protocols.settings import Protocol, config_hash
from bench.shard import WHOLE, Shard
from bench.store import (
    CHECKPOINT_DIR,
    RUN_CONFIG_FILE,
    RunRecord,
    protocol_run_dir_name,
    write_json_atomic,
    write_run,
)
from bench.sweep import OnRecord, claimed_run_dir, complete_record, sweep
from bench.train.experiment import TrainerOptions, build_experiment, is_global_zero
from bench.train.head import HEAD_FILE, StartingHead, probe_head, zero_head
from bench.weights import Weights
from voc.datamodule import VOCDataModule
from voc.feature_cache import FeatureCache

log = logging.getLogger(__name__)


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
        start_head = None
        if protocol.head_init != "random":
            start_head = partial(starting_head, model_name=model_name, protocol=protocol, data=data, weights=weights,
                                 options=options, run_dir=run_dir, config_hash=record.config_hash, resume=resume)
        experiment = build_experiment(model_name, protocol=protocol, data=data, weights=weights, options=options,
                                      run_dir=run_dir, start_head=start_head)
        module, datamodule, trainer, meter = (
            experiment.module, experiment.datamodule, experiment.trainer, experiment.meter
        )
        record.environment = environment(experiment.accelerator, experiment.precision)
        record.params = experiment.params
        if experiment.head is not None:
            record.extra["head_init"] = experiment.head.section
        if experiment.image_cache is not None:
            record.extra["images"] = experiment.image_cache
        log.info("%s: %s, %s, %d parameters", model_name, weights.description, experiment.precision, record.params)
        train_started = time.perf_counter()
        if checkpoint is not None:
            log.info("%s: resuming from %s (--resume)", model_name, checkpoint)
        with interrupt_as_keyboard_interrupt(trainer):
            trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
        eval_started = time.perf_counter()
        with interrupt_as_keyboard_interrupt(trainer):
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
        stage1 = experiment.head.section.get("time_s", {}).get("total") if experiment.head is not None else None
        record.wall_time_s = {
            "setup": round(train_started - started - (stage1 or 0.0), 3),
            **({"head_init": stage1} if stage1 is not None else {}),
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


@contextmanager
def interrupt_as_keyboard_interrupt(trainer: pl.Trainer) -> Iterator[None]:
    """Lightning answers Ctrl+C inside ``fit``/``test`` by shutting down and calling ``sys.exit(1)``
    with SIGINT ignored; here that exit becomes the ``KeyboardInterrupt`` it was (SIGINT handled
    again), so the sweep stops as on an interrupt anywhere else: no record, exit status 130."""
    try:
        yield
    except SystemExit as exit_:
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt from exit_


def starting_head(
    classifier: CropMaxClassifier,
    data_config: DataConfig,
    datamodule: VOCDataModule,
    precision: str,
    *,
    model_name: str,
    protocol: Protocol,
    data: DataSource,
    weights: Weights,
    options: TrainerOptions,
    run_dir: Path,
    config_hash: str,
    resume: bool,
) -> StartingHead:
    """The head ``protocol.head_init`` starts ``classifier`` from (``bench.train.head``): with
    ``resume``, the one a run of the same config finished fitting (``head_init.pt``) where there is
    one; else ``zero``'s or stage 1's probe, fitted now and saved there for a later ``--resume``."""
    path = run_dir / HEAD_FILE
    if resume:
        saved = StartingHead.load(path, config_hash)
        if saved is not None:
            log.info("%s: the stage-1 head of the same config from %s (--resume)", model_name, path)
            return saved
    if protocol.head_init == "zero":
        datamodule.setup("fit")  # reads the label files only; Lightning's own setup call then keeps the set
        head = zero_head(datamodule.train_set.labels)
    else:
        accelerator = resolve_accelerator(options.accelerator)
        device = torch.device("cuda" if accelerator in ("gpu", "cuda") else accelerator)
        cache_root = options.feature_cache if options.feature_cache is not None else run_dir.parent / FEATURE_DIR
        cache = FeatureCache(cache_root)
        head = probe_head(model_name, classifier, data_config, protocol=protocol, data=data, weights=weights,
                          cache=cache, device=device, precision=precision, cache_dir=datamodule.cache_dir)
    if is_global_zero():
        head.save(path, config_hash)
    return head


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


