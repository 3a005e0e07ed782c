"""One backbone wired for training: the Lightning module, data, trainer and throughput meter."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from bench.data import DataSource
from bench.hardware import resolve_accelerator, resolve_precision
from bench.model import build_classifier, count_parameters
from bench.protocol import Protocol
from bench.store import CHECKPOINT_DIR, LOG_DIR
from bench.train.throughput import ThroughputMeter
from bench.weights import Weights
from voc.datamodule import VOCDataModule
from voc.module import MultiLabelClassifier


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
    eval_every: int | None = None
    """Evaluate on the eval split every this many epochs (Lightning validation, logged as ``val_mAP``,
    ``val_ema_mAP``, ...): a learning curve only; the reported model is the final one whatever it shows."""


def is_global_zero() -> bool:
    """Whether this process is rank 0 (the only one that writes files)."""
    return rank_zero_only.rank == 0


def _loggers(run_dir: Path) -> list[Logger]:
    loggers: list[Logger] = [CSVLogger(run_dir, name=LOG_DIR, version="")]  # run_dir/logs/metrics.csv
    if importlib.util.find_spec("tensorboard") is not None:
        loggers.append(TensorBoardLogger(run_dir, name=LOG_DIR, version="", default_hp_metric=False))
    return loggers


def build_datamodule(
    protocol: Protocol, data: DataSource, options: TrainerOptions, mean, std, interpolation: str,  # noqa: ANN001
) -> VOCDataModule:
    """The protocol's splits, labels and transforms on ``data``, normalised for the backbone."""
    return VOCDataModule(
        data.root,
        year=protocol.year,
        train_split=protocol.train_split,
        eval_split=protocol.eval_split,
        labels=protocol.label_config(),
        transform=protocol.transform_config(mean, std, interpolation),
        batch_size=protocol.batch_size,
        eval_batch_size=protocol.eval_batch_size,
        num_workers=options.num_workers,
        cache_dir=options.cache_dir,
        seed=protocol.seed,
        skip_bad_images=bool(data.skipped),
        exclude=data.skipped,
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

    With ``run_dir`` the trainer logs there (CSV, TensorBoard) and keeps ``checkpoints/last.ckpt``
    (the model after the latest epoch, never one chosen by an eval score); without it nothing is
    written (speed measurements).
    """
    accelerator = resolve_accelerator(options.accelerator)
    precision = resolve_precision(protocol.precision, accelerator)
    pl.seed_everything(protocol.seed, workers=True, verbose=False)
    classifier, data_config = build_classifier(model_name, weights, input_size=protocol.input_size)
    datamodule = build_datamodule(
        protocol, data, options, data_config.mean, data_config.std, data_config.interpolation
    )
    module = MultiLabelClassifier(classifier, **asdict(protocol.train_config()))
    meter = ThroughputMeter()
    callbacks: list[pl.Callback] = [meter]
    if run_dir is not None:
        # one file, replaced after every training epoch: what --resume continues from
        callbacks.append(
            ModelCheckpoint(
                dirpath=run_dir / CHECKPOINT_DIR, filename="last", save_top_k=1, every_n_epochs=1,
                enable_version_counter=False,
            )
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
        limit_val_batches=0 if options.eval_every is None else protocol.limit_eval_batches,
        check_val_every_n_epoch=options.eval_every or 1,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        deterministic=options.deterministic,
        enable_model_summary=False,
        default_root_dir=run_dir,
    )
    return Experiment(module, datamodule, trainer, meter, accelerator, precision, count_parameters(classifier))
