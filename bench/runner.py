"""Runs the protocol on each backbone and writes one record per model; failures become records."""

from __future__ import annotations

import gc
import importlib.util
import itertools
import json
import logging
import time
import traceback
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from bench.data import DataSource
from bench.hardware import (
    environment,
    peak_rss_mb,
    reset_peak_rss,
    resolve_accelerator,
    resolve_precision,
)
from bench.leaderboard import write_leaderboard
from bench.model import build_classifier, count_parameters
from bench.protocol import Protocol, config_hash
from bench.report import ReportOptions, write_report
from bench.results import (
    LABELS_FILE,
    PREDICTIONS_FILE,
    RESULT_FILE,
    lock_file,
    run_dir_name,
    write_json_atomic,
    write_text_atomic,
)
from bench.throughput import ThroughputMeter
from bench.weights import Weights, resolve_weights
from voc.datamodule import VOCDataModule
from voc.dataset import VOCClassification, find_bad_images
from voc.errors import VOCDataError
from voc.metrics import evaluate
from voc.module import MultiLabelClassifier
from voc.tables import class_table_csv

log = logging.getLogger(__name__)

MAX_LISTED = 5
"""How many bad files an error message names."""
RUN_LOCK_FILE = ".run.lock"
"""Held (flock) by the sweep that is running a model in that folder."""
RUN_CONFIG_FILE = "run_config.json"
"""Written when a run starts: the config hash its checkpoints belong to."""
CHECKPOINT_DIR = "checkpoints"
"""Inside each run folder; ``last.ckpt`` is the model after the latest finished epoch."""
BASELINE_NAME = "prior-baseline"
"""The label-prior baseline: every eval image scored with the training split's class frequencies."""


@dataclass(frozen=True)
class TrainerOptions:
    """Where and how Lightning runs: devices, nodes, strategy, loader workers."""

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int | None = None
    cache_dir: Path | None = None
    """Decode-once cache of resized images (``voc.cache``); ``None`` decodes JPEGs every epoch."""
    deterministic: bool = False
    """Lightning's ``deterministic=True``: deterministic algorithms only (slower on GPUs)."""


def is_global_zero() -> bool:
    """Whether this process is rank 0 (the only one that writes files)."""
    return rank_zero_only.rank == 0


def _loggers(run_dir: Path) -> list[Logger]:
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs", version="")]
    if importlib.util.find_spec("tensorboard") is not None:
        loggers.append(TensorBoardLogger(run_dir, name="logs", version="", default_hp_metric=False))
    return loggers


def _base_record(name: str, protocol: Protocol, data: DataSource, command: str | None) -> dict[str, Any]:
    return {
        "model": name,
        "status": "failed",
        "error": None,
        "weights": None,
        "dataset": data.to_record(protocol.year, protocol.train_split, protocol.eval_split),
        "config": protocol.to_dict(),
        "metrics": None,
        "throughput": None,
        "wall_time_s": None,
        "params": None,
        "environment": None,
        "command": command,
    }


def _write_run(
    run_dir: Path, record: dict[str, Any], ids: Sequence[str] | None, scores: np.ndarray | None, labels: np.ndarray | None
) -> None:
    if ids is not None and scores is not None and labels is not None:
        write_text_atomic(run_dir / PREDICTIONS_FILE, class_table_csv(ids, scores))
        write_text_atomic(run_dir / LABELS_FILE, class_table_csv(ids, labels.astype(np.int64)))
    write_json_atomic(run_dir / RESULT_FILE, record)


def _datamodule(protocol: Protocol, data: DataSource, options: TrainerOptions, **transform: Any) -> VOCDataModule:
    return VOCDataModule(
        data.root,
        year=protocol.year,
        train_split=protocol.train_split,
        eval_split=protocol.eval_split,
        batch_size=protocol.batch_size,
        eval_batch_size=protocol.eval_batch_size,
        resize=protocol.resize,
        crop=protocol.crop,
        crop_mode=protocol.crop_mode,
        hflip=protocol.hflip,
        rotation=protocol.rotation,
        difficult=protocol.difficult,
        label_source=protocol.label_source,
        positive_only=protocol.positive_only,
        skip_bad_images=bool(data.skipped),
        exclude=data.skipped,
        num_workers=options.num_workers,
        cache_dir=options.cache_dir,
        seed=protocol.seed,
        **transform,
    )


@dataclass
class Experiment:
    """One backbone wired for training: Lightning module, data, trainer and throughput meter."""

    module: MultiLabelClassifier
    datamodule: VOCDataModule
    trainer: pl.Trainer
    meter: ThroughputMeter
    accelerator: str
    precision: str
    params: int


def build_experiment(
    model_name: str,
    *,
    protocol: Protocol,
    data: DataSource,
    weights: Weights,
    options: TrainerOptions = TrainerOptions(),
    run_dir: Path | None = None,
) -> Experiment:
    """Seed, build the classifier, data and trainer of one run under ``protocol``.

    With ``run_dir`` the trainer logs there (CSV, TensorBoard) and keeps ``checkpoints/last.ckpt``;
    without it nothing is written (speed measurements).
    """
    accelerator = resolve_accelerator(options.accelerator)
    precision = resolve_precision(protocol.precision, accelerator)
    pl.seed_everything(protocol.seed, workers=True, verbose=False)
    classifier, data_config = build_classifier(model_name, weights, input_size=protocol.input_size)
    datamodule = _datamodule(
        protocol, data, options, mean=data_config.mean, std=data_config.std, interpolation=data_config.interpolation
    )
    module = MultiLabelClassifier(
        classifier, lr=protocol.lr, optimizer=protocol.optimizer, weight_decay=protocol.weight_decay
    )
    meter = ThroughputMeter()
    callbacks: list[pl.Callback] = [meter]
    if run_dir is not None:
        # one file, replaced after every training epoch: what --resume continues from
        callbacks.append(
            ModelCheckpoint(dirpath=run_dir / CHECKPOINT_DIR, filename="last", save_top_k=1, every_n_epochs=1, enable_version_counter=False)
        )
    trainer = pl.Trainer(
        max_epochs=protocol.epochs,
        accelerator=accelerator,
        devices=options.devices,
        num_nodes=options.num_nodes,
        strategy=options.strategy,
        precision=precision,
        logger=_loggers(run_dir) if run_dir is not None else False,
        enable_checkpointing=run_dir is not None,
        callbacks=callbacks,
        limit_train_batches=protocol.limit_train_batches,
        limit_test_batches=protocol.limit_eval_batches,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        deterministic=options.deterministic,
        enable_model_summary=False,
        default_root_dir=run_dir,
    )
    return Experiment(module, datamodule, trainer, meter, accelerator, precision, count_parameters(classifier))


def run_model(
    model_name: str,
    *,
    protocol: Protocol,
    data: DataSource,
    out_dir: str | Path,
    pretrained: str = "auto",
    options: TrainerOptions = TrainerOptions(),
    command: str | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train and evaluate one backbone; returns its record (``status`` ``ok`` or ``failed``).

    Any exception (bad name, missing weights, out of memory, non-finite loss, ...) is caught and
    recorded with its message, so a sweep can go on. With ``resume``, a complete record of the same
    config (protocol, data, model, weights choice) is kept as it is, and an interrupted run of the
    same config continues from its last epoch checkpoint.
    """
    run_dir, run_lock = _claim_run_dir(Path(out_dir), run_dir_name(model_name, protocol.seed))
    try:
        return _run_model_in(
            run_dir, model_name, protocol=protocol, data=data, pretrained=pretrained, options=options,
            command=command, resume=resume,
        )
    finally:
        if run_lock is not None:
            run_lock.close()


def _claim_run_dir(out_dir: Path, base: str) -> tuple[Path, IO[str] | None]:
    """The run folder ``base``, locked for this run. Where another live sweep holds ``<base>``,
    the next free ``<base>~2``, ``<base>~3``, ...: concurrent sweeps of one model lose no record.
    Only rank 0 locks (the only writer); the other ranks use the plain name."""
    if not is_global_zero():
        return out_dir / base, None
    for k in itertools.count(1):
        run_dir = out_dir / (base if k == 1 else f"{base}~{k}")
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = lock_file(run_dir / RUN_LOCK_FILE, wait=False)
        if handle is not None:
            if k > 1:
                log.warning("%s is in use by another sweep: this run writes to %s", out_dir / base, run_dir)
            return run_dir, handle
    raise AssertionError("unreachable")


def _run_model_in(
    run_dir: Path,
    model_name: str,
    *,
    protocol: Protocol,
    data: DataSource,
    pretrained: str,
    options: TrainerOptions,
    command: str | None,
    resume: bool,
) -> dict[str, Any]:
    record = _base_record(model_name, protocol, data, command)
    record["config_hash"] = config_hash(
        {"model": model_name, "pretrained": pretrained}, protocol.to_dict(), record["dataset"]
    )
    if resume:
        previous = _complete_record(run_dir, record["config_hash"])
        if previous is not None:
            log.info("%s: complete record of the same config in %s, skipped (--resume)", model_name, run_dir)
            return previous
    checkpoint = _resumable_checkpoint(run_dir, record["config_hash"]) if resume else None
    if is_global_zero():
        write_json_atomic(run_dir / RUN_CONFIG_FILE, {"config_hash": record["config_hash"]})
    started = time.perf_counter()
    reset_peak_rss()
    ids: list[str] | None = None
    scores: np.ndarray | None = None
    labels: np.ndarray | None = None
    try:
        weights = resolve_weights(model_name, pretrained)
        record["weights"] = weights.description
        experiment = build_experiment(model_name, protocol=protocol, data=data, weights=weights, options=options, run_dir=run_dir)
        module, datamodule, trainer, meter = experiment.module, experiment.datamodule, experiment.trainer, experiment.meter
        precision = experiment.precision
        record["environment"] = environment(experiment.accelerator, precision)
        record["params"] = experiment.params
        log.info("%s: %s, %s, %d parameters", model_name, weights.description, precision, record["params"])
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
        world = trainer.world_size
        train_rate, eval_rate = meter.train.images_per_s(), meter.eval.images_per_s()
        record.update(
            status="ok",
            metrics=module.eval_metrics,
            throughput={
                "train_images_per_s": None if train_rate is None else round(train_rate * world, 3),
                "eval_images_per_s": None if eval_rate is None else round(eval_rate * world, 3),
                "measured": "steady state, end to end (data loading included), all processes",
            },
            wall_time_s={
                "setup": round(train_started - started, 3),
                "train": round(eval_started - train_started, 3),
                "eval": round(finished - eval_started, 3),
            },
        )
        record["dataset"].update(n_train_images=len(datamodule.train_set or []), n_eval_images=len(datamodule.eval_set))
    except Exception as err:  # noqa: BLE001 - one model's failure must not stop the sweep
        record["error"] = f"{type(err).__name__}: {err}"
        ids = scores = labels = None
        log.error("%s failed: %s", model_name, record["error"])
        log.debug("%s", traceback.format_exc())
    record["wall_time_s"] = {**(record["wall_time_s"] or {}), "total": round(time.perf_counter() - started, 3)}
    record["peak_rss_mb"] = peak_rss_mb()
    if is_global_zero():
        _write_run(run_dir, record, ids, scores, labels)
    return record


def check_data(
    protocol: Protocol, data: DataSource, *, decode: bool = True, skip_bad_images: bool = False
) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """Read both splits' lists and labels, and (``decode``) decode every image at a reduced scale,
    once before any training; VOCDataError names the bad file(s).

    With ``skip_bad_images``, images that are missing or do not decode are left out instead and
    returned as split → {id: reason}, also logged. Returns (images per split after the
    protocol's filters, skipped images).
    """
    sizes: dict[str, int] = {}
    skipped: dict[str, dict[str, str]] = {}
    for split in (protocol.train_split, protocol.eval_split):
        dataset = _dataset(protocol, data, split, skip_bad_images=skip_bad_images)
        bad = dict(dataset.skipped)
        if decode:
            undecodable = find_bad_images(dataset)
            if undecodable and not skip_bad_images:
                listed = "; ".join(reason for _, reason in undecodable[:MAX_LISTED])
                more = f" (and {len(undecodable) - MAX_LISTED} more)" if len(undecodable) > MAX_LISTED else ""
                raise VOCDataError(
                    f"{len(undecodable)} image(s) of split {split!r} do not decode: {listed}{more}. "
                    "Replace them, or pass --skip-bad-images to leave them out"
                )
            bad.update(undecodable)
        if bad:
            skipped[split] = bad
            log.warning(
                "--skip-bad-images: leaving out %d image(s) of split %r: %s",
                len(bad), split, "; ".join(f"{i} ({r})" for i, r in list(bad.items())[:MAX_LISTED]),
            )
        size = len(dataset) - len(bad) + len(dataset.skipped)  # missing files are already out of the dataset
        if size <= 0:
            raise VOCDataError(
                f"split {split!r} has no usable image"
                + (" with a positive label (images without one are left out: positive_only)" if protocol.positive_only else ""),
                dataset.voc_dir / "ImageSets" / "Main" / f"{split}.txt",
            )
        sizes[split] = size
    return sizes, skipped


def _dataset(protocol: Protocol, data: DataSource, split: str, *, skip_bad_images: bool = False) -> VOCClassification:
    """A split under the protocol's label settings, without the images ``data`` leaves out."""
    return VOCClassification(
        data.root,
        protocol.year,
        split,
        label_source=protocol.label_source,
        difficult=protocol.difficult,
        positive_only=protocol.positive_only,
        skip_bad_images=skip_bad_images or bool(data.skipped),
        exclude=data.skipped.get(split),
    )


def _complete_record(run_dir: Path, expected_hash: str) -> dict[str, Any] | None:
    """The run's finished ``ok`` record if it was made with the same config, else ``None``."""
    try:
        record = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("status") == "ok" and record.get("config_hash") == expected_hash:
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


def run_prior_baseline(
    *, protocol: Protocol, data: DataSource, out_dir: str | Path, command: str | None = None
) -> dict[str, Any]:
    """Score every eval image with the training split's class frequencies: every table's floor."""
    run_dir = Path(out_dir) / BASELINE_NAME
    record = _base_record(BASELINE_NAME, protocol, data, command)
    record["weights"] = "train-split label priors"
    ids: list[str] | None = None
    scores: np.ndarray | None = None
    labels: np.ndarray | None = None
    try:
        train = _dataset(protocol, data, protocol.train_split)
        evalset = _dataset(protocol, data, protocol.eval_split)
        ids = list(evalset.ids)
        scores = np.tile(train.label_frequencies(), (len(ids), 1))
        labels = evalset.labels
        record.update(status="ok", metrics=evaluate(scores, evalset.labels.astype(np.int64)), params=0)
        record["config"] = {**record["config"], "epochs": 0}
        record["dataset"].update(n_train_images=len(train), n_eval_images=len(evalset))
    except Exception as err:  # noqa: BLE001
        record["error"] = f"{type(err).__name__}: {err}"
        ids = scores = labels = None
        log.error("%s failed: %s", BASELINE_NAME, record["error"])
    if is_global_zero():
        _write_run(run_dir, record, ids, scores, labels)
    return record


def run_sweep(
    models: Sequence[str],
    *,
    protocol: Protocol,
    data: DataSource,
    out_dir: str | Path,
    pretrained: str = "auto",
    options: TrainerOptions = TrainerOptions(),
    command: str | None = None,
    baseline: bool = True,
    resume: bool = False,
    seeds: Sequence[int] | None = None,
    report: ReportOptions | None = ReportOptions(),
) -> list[dict[str, Any]]:
    """The prior baseline (optional), then every model once per seed (``seeds``, default the
    protocol's one seed), all models of a seed before the next seed; rebuilds the leaderboard after
    each run, so an interrupted sweep leaves a valid one, and ``report.md`` at the end (unless
    ``report`` is ``None``)."""
    records = []
    if baseline:
        records.append(run_prior_baseline(protocol=protocol, data=data, out_dir=out_dir, command=command))
        if is_global_zero():
            write_leaderboard(out_dir)
    for seed in seeds if seeds else [protocol.seed]:
        for model_name in models:
            records.append(
                run_model(
                    model_name,
                    protocol=replace(protocol, seed=seed),
                    data=data,
                    out_dir=out_dir,
                    pretrained=pretrained,
                    options=options,
                    command=command,
                    resume=resume,
                )
            )
            if is_global_zero():
                write_leaderboard(out_dir)
            gc.collect()  # the finished model's trainer, module and loaders hold reference cycles
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    if report is not None and is_global_zero():
        write_report(out_dir, report)
    return records
