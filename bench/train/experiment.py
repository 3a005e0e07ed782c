"""One backbone wired for training: the Lightning module, data, trainer and throughput meter."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from bench.data import DataSource
from bench.hardware import resolve_accelerator, resolve_precision
from bench.model import CropMaxClassifier, DataConfig, build_classifier, count_parameters
from bench.protocols.settings import Protocol
from bench.store import CHECKPOINT_DIR, LOG_DIR
from bench.train.throughput import ThroughputMeter
from bench.weights import Weights
from voc.datamodule import VOCDataModule
from voc.module import MultiLabelClassifier

log = logging.getLogger(__name__)

IMAGE_CACHE_DIR = ".images"
"""The default decode-once image cache of a fine-tuning run: ``<out>/.images`` (``voc.cache``)."""
IMAGE_CACHE_MEMORY_SHARE = 0.25
"""Images are decoded once, resized, into the cache where both splits at the protocol's resize take at
most this share of the memory available when the run starts (the file is memory-mapped: the page
cache keeps it); otherwise every epoch decodes them."""


@dataclass(frozen=True)
class TrainerOptions:
    """Where and how Lightning runs: devices, nodes, strategy, loader workers."""

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int | None = None
    cache_dir: Path | None = None
    """Decode-once cache of resized images (``voc.cache``) here; ``None``: ``<out>/.images`` where the
    images fit in memory (:func:`image_cache_plan`), else JPEGs decoded every epoch."""
    feature_cache: Path | None = None
    """Where stage 1 of ``head_init="probe"`` keeps the backbone's features; ``None``: ``<out>/.features``."""
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


def available_memory_bytes() -> int | None:
    """The memory available to new work (``MemAvailable`` of ``/proc/meminfo``, else the free
    physical pages); ``None`` where neither can be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def resized_bytes(image_sizes: list[tuple[int, int]], resize: int, crop_mode: str) -> int:
    """Bytes of uint8 RGB images of ``(width, height)`` ``image_sizes`` after the protocol's resize."""
    from voc.transforms import resized_size

    return sum(3 * w * h for w, h in (resized_size(width, height, resize, crop_mode) for width, height in image_sizes))


def image_cache_plan(
    protocol: Protocol, options: TrainerOptions, out_dir: Path | None, image_sizes: list[tuple[int, int]],
) -> tuple[Path | None, dict[str, Any]]:
    """Where a fine-tuning run caches its decoded, resized images, and the record's account of it:
    ``--cache-dir`` where given; else ``<out>/.images`` where the images (``image_sizes``, both
    splits) fit in :data:`IMAGE_CACHE_MEMORY_SHARE` of the available memory and the decoder is PIL
    (the cache's); else none (JPEGs decoded every epoch)."""
    need = resized_bytes(image_sizes, protocol.resize, protocol.crop_mode)
    plan: dict[str, Any] = {"resized_mb": round(need / 2**20, 1)}
    if options.cache_dir is not None:
        return options.cache_dir, {**plan, "decoded": "once", "cache": str(options.cache_dir), "why": "--cache-dir"}
    if out_dir is None:
        return None, {**plan, "decoded": "every epoch", "why": "no output folder"}
    if protocol.decode != "pil":
        return None, {**plan, "decoded": "every epoch",
                      "why": f"decode {protocol.decode}: the cache holds PIL's pixels"}
    available = available_memory_bytes()
    plan["available_mb"] = None if available is None else round(available / 2**20, 1)
    if available is None or need > IMAGE_CACHE_MEMORY_SHARE * available:
        return None, {**plan, "decoded": "every epoch",
                      "why": f"the resized images exceed {IMAGE_CACHE_MEMORY_SHARE:g} of the available memory"}
    cache_dir = out_dir / IMAGE_CACHE_DIR
    return cache_dir, {**plan, "decoded": "once", "cache": str(cache_dir),
                       "why": f"the resized images fit in {IMAGE_CACHE_MEMORY_SHARE:g} of the available memory"}


def build_datamodule(
    protocol: Protocol, data: DataSource, options: TrainerOptions, mean, std, interpolation: str,  # noqa: ANN001
    cache_dir: Path | None = None,
) -> VOCDataModule:
    """The protocol's splits, labels and transforms on ``data``, normalised for the backbone
    (images cached in ``cache_dir`` where given, else in ``options.cache_dir``)."""
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
        cache_dir=cache_dir if cache_dir is not None else options.cache_dir,
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
    head: Any = None
    """The ``StartingHead`` copied into the classifier (``bench.train.head``), ``None`` for timm's."""
    image_cache: dict[str, Any] | None = None
    """Whether and where the images were decoded once (:func:`image_cache_plan`)."""


StartHead = Callable[[CropMaxClassifier, DataConfig, VOCDataModule, str], Any]
"""Makes the classifier's starting head before the training module is built (``bench.train.head``),
from the classifier, its data config, the datamodule and the resolved precision."""


def build_experiment(
    model_name: str,
    *,
    protocol: Protocol,
    data: DataSource,
    weights: Weights,
    options: TrainerOptions = TrainerOptions(),
    run_dir: Path | None = None,
    start_head: StartHead | None = None,
) -> Experiment:
    """Seed, build the classifier, data and trainer of one run under ``protocol``.

    With ``run_dir`` the trainer logs there (CSV, TensorBoard) and keeps ``checkpoints/last.ckpt``
    (the model after the latest epoch, never one chosen by an eval score); without it nothing is
    written (speed measurements). ``start_head`` makes the head the classifier starts from
    (``protocol.head_init`` other than ``random``), copied in before the training module (and its
    EMA) is built.
    """
    accelerator = resolve_accelerator(options.accelerator)
    precision = resolve_precision(protocol.precision, accelerator)
    pl.seed_everything(protocol.seed, workers=True, verbose=False)
    classifier, data_config = build_classifier(model_name, weights, input_size=protocol.input_size)
    datamodule = build_datamodule(
        protocol, data, options, data_config.mean, data_config.std, data_config.interpolation
    )
    datamodule.setup("fit")
    cache_dir, image_cache = image_cache_plan(
        protocol, options, run_dir.parent if run_dir is not None else None, _image_sizes(datamodule),
    )
    datamodule.cache_dir = cache_dir
    datamodule.train_set = datamodule.eval_set = None  # set up again, reading the cache where there is one
    head = None
    if start_head is not None:
        head = start_head(classifier, data_config, datamodule, precision)
        head.copy_into(classifier)
        # stage 1 leaves the training's random draws as they would be without it
        pl.seed_everything(protocol.seed, workers=True, verbose=False)
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
    return Experiment(module, datamodule, trainer, meter, accelerator, precision, count_parameters(classifier), head,
                      image_cache)


def _image_sizes(datamodule: VOCDataModule) -> list[tuple[int, int]]:
    """``(width, height)`` of every image of both splits, read from the JPEG headers."""
    from PIL import Image

    sizes = []
    for dataset in (datamodule.train_set, datamodule.eval_set):
        for index in range(len(dataset or [])):
            with Image.open(dataset.image_path(index)) as image:
                sizes.append(image.size)
    return sizes
