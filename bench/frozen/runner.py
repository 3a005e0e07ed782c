"""The frozen-feature protocols (each a module of ``bench.protocols``, e.g. ``linear``) on each
backbone: its features computed once per image and cached on disk, then scored by the protocol's
module, one record per run; a failure becomes a record and the sweep goes on.

Features are timm's pooled pre-logits, ``forward_head(forward_features(x), pre_logits=True)``, of
the backbone in eval mode under ``torch.inference_mode`` (the head, i.e. pooling and any head norm,
in float32 as in ``bench.model``), through the same datamodule and
transforms as every run (no augmentation), the mean over the view's crops, stored as float32. The
cache (``voc.feature_cache``, default ``<out>/.features``) is keyed by the model, its weights,
the data (root, record, split, the images' files), the view (the whole transform config),
the precision and device, and the format version. Extraction runs compiled where
``bench.frozen.compiled``'s measured rule says it pays (``--compile``); the choice is recorded.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.data import DataSource
from bench.frozen.compiled import (
    CompileDecision,
    Encode,
    FixedBatchEncoder,
    decide_compile,
    eager_rate,
    freezing,
    rule_applies,
)
from bench.hardware import (
    autocast_dtype,
    environment,
    peak_rss_mb,
    reset_peak_rss,
    resolve_accelerator,
    resolve_precision,
)
from bench.model import build_classifier, count_parameters
from bench.prior_baseline import new_record, run_prior_baseline
from bench.protocols import frozen_spec
from bench.protocols.settings import FrozenProtocol, config_hash, without_default_decode
from bench.protocols.spec import FeatureSplits
from bench.shard import WHOLE, Shard
from bench.store import (
    RUN_CONFIG_FILE,
    RunRecord,
    protocol_run_dir_name,
    run_dir_name,
    write_json_atomic,
    write_run,
)
from bench.sweep import OnRecord, claimed_run_dir, complete_record, sweep
from bench.weights import Weights
from voc.config import TransformConfig
from voc.datamodule import VOCDataModule, available_cores, default_num_workers
from voc.feature_cache import FeatureCache, files_digest
from voc.features import extract_features

log = logging.getLogger(__name__)

FEATURE_DIR = ".features"
"""The default feature cache: ``<out>/.features`` (``--feature-cache`` puts it elsewhere)."""
EXTRACTOR = "timm forward_head(forward_features(x), pre_logits=True), head in float32, eval mode, mean over crops"


@dataclass(frozen=True)
class FrozenOptions:
    """Where and how a frozen run computes: device, loader workers, caches, probe processes."""

    accelerator: str = "auto"
    num_workers: int | None = None
    """Loader workers; ``None``: :func:`loader_arrangement` chooses."""
    loader_threads: int | None = None
    """With no workers: threads that make each batch in the main process (``VOCDataModule``);
    ``None``: :func:`loader_arrangement` chooses."""
    cache_dir: Path | None = None
    """Decode-once cache of resized images (``voc.cache``) for the extraction; ``None``: decode JPEGs."""
    feature_cache: Path | None = None
    """The feature cache folder; ``None``: ``<out>/.features``."""
    n_jobs: int | None = -1
    """Processes the probe fits classes over (joblib; -1: every core)."""
    compile: str = "auto"
    """``torch.compile`` the extractor: ``auto`` (``bench.frozen.compiled``'s measured rule), ``on``, ``off``."""


def pooled_features(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's pooled pre-logits features of crops ``x``, float32 ``[B, D]``. As in
    ``bench.model.CropMaxClassifier``, the feature maps come in the autocast precision and the head
    (pooling, any head norm) runs in float32 with autocast off: a bf16 pooled vector would keep 8
    bits of mantissa per value."""
    features = backbone.forward_features(x)
    with torch.autocast(device_type=x.device.type, enabled=False):
        return backbone.forward_head(features.float(), pre_logits=True)


def frozen_run_dir_name(model: str, protocol: FrozenProtocol) -> str:
    """``<model>[-seed<k>]-<protocol name>``, e.g. ``-linear``: beside the same model's fine-tuning runs."""
    return protocol_run_dir_name(model, protocol.seed, protocol.name)


def weights_identity(weights: Weights, seed: int) -> dict[str, Any]:
    """What the backbone's weights are, for the feature cache key: the description, the file (with
    its size and time) where there is one, and the seed of a random init."""
    ident: dict[str, Any] = {"source": weights.source, "description": weights.description}
    if weights.file is not None:
        path = Path(weights.file)
        stat = path.stat()
        ident.update(file=str(path.resolve()), size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    if weights.source == "random":
        ident["seed"] = seed
    return ident


def feature_key(
    model_name: str,
    weights: Weights,
    protocol: FrozenProtocol,
    data: DataSource,
    split: str,
    transform: TransformConfig,
    image_paths: Sequence[Path],
    precision: str,
    device: torch.device,
) -> dict[str, Any]:
    """Everything a split's cached features depend on."""
    record = data.to_record(protocol.year, split, split)
    record["root"] = str(Path(data.root).resolve())
    return {
        "model": model_name,
        "weights": weights_identity(weights, protocol.seed),
        "data": {**record, "split": split},
        "images": files_digest(image_paths),
        "view": without_default_decode(asdict(transform)),
        "precision": precision,
        "device": device.type,
        "extractor": EXTRACTOR,
    }


@dataclass
class SplitFeatures:
    """One split's images, labels and features, and where the features came from."""

    split: str
    ids: list[str]
    labels: np.ndarray
    features: np.ndarray
    path: Path
    from_cache: bool
    images_per_s: float | None


@dataclass
class _Extractor:
    """A frozen backbone on its device, and what its features depend on."""

    model_name: str
    weights: Weights
    backbone: nn.Module
    transform: TransformConfig
    precision: str
    device: torch.device


@dataclass
class _SplitPlan:
    """One split's images and labels, its cache entry's name and key, and its features if cached."""

    split: str
    datamodule: VOCDataModule
    ids: list[str]
    labels: np.ndarray
    name: str
    key: dict[str, Any]
    cached: np.ndarray | None


def loader_arrangement(options: FrozenOptions, accelerator: str) -> tuple[int, int]:
    """``(workers, threads)`` of the extraction loader: what ``options`` set, and by default, on the
    CPU, no workers and one decoding thread per core in the main process between the model's
    batches; on an accelerator, the datamodule's default workers.

    On the CPU, workers share the cores with the model's compute threads. Measured with Lite0 on
    real VOC photos on 2 cores (``python benchmark.py speed --protocol linear``,
    benchmarks/2026-12-03-amd-epyc-2core): end to end against the model alone, median of 5 runs
    0.932 with no workers and 2 threads, of 4 runs 0.800 with one worker.
    """
    workers, threads = options.num_workers, options.loader_threads
    if workers is not None and workers > 0:
        return workers, 0
    if workers is None and threads is None and accelerator != "cpu":
        return default_num_workers(), 0
    if threads is None:
        threads = available_cores() if accelerator == "cpu" else 0
    return 0, threads


def frozen_datamodule(
    protocol: FrozenProtocol,
    data: DataSource,
    transform: TransformConfig,
    *,
    train_split: str,
    eval_split: str,
    num_workers: int | None,
    cache_dir: Path | None = None,
    loader_threads: int = 0,
) -> VOCDataModule:
    """The protocol's labels on ``data``'s splits under the view ``transform``, in extraction batches
    (``protocol.batch_size``) for both loaders."""
    return VOCDataModule(
        data.root,
        year=protocol.year,
        train_split=train_split,
        eval_split=eval_split,
        labels=protocol.label_config(),
        transform=transform,
        batch_size=protocol.batch_size,
        eval_batch_size=protocol.batch_size,
        num_workers=num_workers,
        cache_dir=cache_dir,
        seed=protocol.seed,
        skip_bad_images=bool(data.skipped),
        exclude=data.skipped,
        loader_threads=loader_threads,
    )


def plan_split(
    split: str,
    extractor: _Extractor,
    *,
    protocol: FrozenProtocol,
    data: DataSource,
    options: FrozenOptions,
    cache: FeatureCache,
    loader: tuple[int, int],
) -> _SplitPlan:
    """``split``'s loader (``loader``: workers and threads, :func:`loader_arrangement`), ids and
    labels, and its features where the cache has them."""
    workers, threads = loader
    datamodule = frozen_datamodule(protocol, data, extractor.transform, train_split=split, eval_split=split,
                                   num_workers=workers, cache_dir=options.cache_dir, loader_threads=threads)
    datamodule.setup("test")
    dataset = datamodule.eval_set
    assert dataset is not None
    ids = list(dataset.ids)
    paths = [dataset.image_path(i) for i in range(len(dataset))]
    key = feature_key(extractor.model_name, extractor.weights, protocol, data, split, extractor.transform, paths,
                      extractor.precision, extractor.device)
    name = f"{run_dir_name(extractor.model_name)}-{split}"
    return _SplitPlan(split, datamodule, ids, dataset.labels, name, key, cache.load(name, key, ids))


def split_features(plan: _SplitPlan, encode: Encode, extractor: _Extractor, cache: FeatureCache) -> SplitFeatures:
    """``plan``'s features from the cache, or computed once with ``encode`` and cached."""
    if plan.cached is not None:
        path = cache.paths(plan.name, plan.key)[0]
        log.info("%s: %s features from cache %s", extractor.model_name, plan.split, path)
        return SplitFeatures(plan.split, plan.ids, plan.labels, plan.cached, path, True, None)
    started = time.perf_counter()
    features = extract_features(
        encode,
        plan.datamodule.test_dataloader(),
        len(plan.ids),
        device=extractor.device,
        autocast_dtype=autocast_dtype(extractor.precision),
        prepare=plan.datamodule.prepare_eval_batch,
    )
    rate = len(plan.ids) / max(time.perf_counter() - started, 1e-9)
    path = cache.save(plan.name, plan.key, plan.ids, features)
    log.info("%s: %s features of %d images computed (%.1f img/s), cached at %s",
             extractor.model_name, plan.split, len(plan.ids), rate, path)
    return SplitFeatures(plan.split, plan.ids, plan.labels, features, path, False, round(rate, 3))


def build_encoder(
    extractor: _Extractor, protocol: FrozenProtocol, mode: str, images: int
) -> tuple[Encode, CompileDecision]:
    """The extractor's encoder, compiled (inductor freezing, one batch shape) where ``mode`` and
    the measured rule (``bench.frozen.compiled.decide_compile``) say so, with the decision."""
    encode: Encode = partial(pooled_features, extractor.backbone)
    rate = None
    crops = protocol.transform_config().num_crops
    measured_device = rule_applies(extractor.device)
    if mode == "auto" and images > 0 and measured_device:
        example = torch.randn(protocol.batch_size * crops, 3, protocol.input_size, protocol.input_size,
                              device=extractor.device).contiguous(memory_format=torch.channels_last)
        rate = eager_rate(encode, example, autocast_dtype(extractor.precision)) / crops
    decision = decide_compile(mode, images, rate, measured_device=measured_device)
    log.info("%s: feature extraction %s (%s)", extractor.model_name, "compiled" if decision.compiled else "eager",
             decision.rule)
    if decision.compiled:
        return FixedBatchEncoder(encode, protocol.batch_size * crops), decision
    return encode, decision


def build_extractor(
    model_name: str, weights: Weights, protocol: FrozenProtocol, accelerator: str, precision: str
) -> tuple[_Extractor, int]:
    """The backbone (the classifier's, built as every run builds it), frozen, and its parameter count."""
    device = torch.device("cuda" if accelerator in ("gpu", "cuda") else accelerator)
    torch.manual_seed(protocol.seed)  # a random-init backbone's weights
    classifier, data_config = build_classifier(model_name, weights, input_size=protocol.input_size)
    backbone = classifier.backbone.eval().requires_grad_(False)
    backbone = backbone.to(device=device, memory_format=torch.channels_last)
    transform = protocol.transform_config(data_config.mean, data_config.std, data_config.interpolation)
    return _Extractor(model_name, weights, backbone, transform, precision, device), count_parameters(backbone)


def run_frozen_model(
    model_name: str,
    *,
    protocol: FrozenProtocol,
    data: DataSource,
    out_dir: str | Path,
    weights: Weights,
    pretrained: str = "auto",
    options: FrozenOptions = FrozenOptions(),
    command: str | None = None,
    resume: bool = False,
) -> RunRecord:
    """Run the frozen ``protocol`` on one backbone from ``weights``; returns its record
    (``ok`` or ``failed``), stored in ``<out>/<model>[-seed<k>]-<protocol name>``. With ``resume``,
    a complete record of the same config is kept as it is."""
    out_dir = Path(out_dir)
    with claimed_run_dir(out_dir, frozen_run_dir_name(model_name, protocol)) as run_dir:
        record = new_record(model_name, protocol, data, command)
        record.config_hash = config_hash({"model": model_name, "pretrained": pretrained}, protocol.to_dict(),
                                         record.dataset)
        if resume:
            previous = complete_record(run_dir, record.config_hash)
            if previous is not None:
                log.info("%s: complete record of the same config in %s, skipped (--resume)", model_name, run_dir)
                return previous
        write_json_atomic(run_dir / RUN_CONFIG_FILE, {"config_hash": record.config_hash})
        cache = FeatureCache(options.feature_cache if options.feature_cache is not None else out_dir / FEATURE_DIR)
        return _run(record, run_dir, model_name, protocol, data, weights, options, cache)


def _run(
    record: RunRecord,
    run_dir: Path,
    model_name: str,
    protocol: FrozenProtocol,
    data: DataSource,
    weights: Weights,
    options: FrozenOptions,
    cache: FeatureCache,
) -> RunRecord:
    started = time.perf_counter()
    reset_peak_rss()
    ids: list[str] | None = None
    scores: np.ndarray | None = None
    labels: np.ndarray | None = None
    sections: list[str] = []
    try:
        record.weights = weights.description
        if weights.sha256 is not None:
            record.weights_sha256 = weights.sha256
        accelerator = resolve_accelerator(options.accelerator)
        precision = resolve_precision(protocol.precision, accelerator)
        extractor, record.params = build_extractor(model_name, weights, protocol, accelerator, precision)
        record.environment = environment(accelerator, precision)
        log.info("%s: %s, frozen, features under %s, %d parameters", model_name, weights.description, precision,
                 record.params)
        loader = loader_arrangement(options, accelerator)
        plans = [
            plan_split(split, extractor, protocol=protocol, data=data, options=options, cache=cache, loader=loader)
            for split in (protocol.train_split, protocol.eval_split)
        ]
        built = time.perf_counter()
        encode, compiling = build_encoder(
            extractor, protocol, options.compile, sum(len(plan.ids) for plan in plans if plan.cached is None)
        )
        with freezing() if compiling.compiled else nullcontext():
            train, evals = (split_features(plan, encode, extractor, cache) for plan in plans)
        if isinstance(encode, FixedBatchEncoder):
            compiling = replace(compiling, compile_s=encode.compile_s)
        view = extractor.transform
        del extractor, encode  # the backbone's memory, before the probes
        features_done = time.perf_counter()
        scored = frozen_spec(protocol.name).score(
            FeatureSplits(train.features, train.labels, evals.features, evals.labels.astype(np.int64),
                          protocol.train_split),
            protocol, options.n_jobs,
        )
        for warning in scored.warnings:
            log.warning("%s: %s", model_name, warning)
        scores, sections = scored.scores, list(scored.sections)
        record.extra.update(scored.sections)
        record.metrics = scored.metrics
        finished = time.perf_counter()
        ids, labels = evals.ids, evals.labels
        record.extra["features"] = {
            "extractor": EXTRACTOR,
            "dim": int(train.features.shape[1]),
            "dtype": "float32",
            "view": asdict(view),
            "precision": precision,
            "compile": compiling.to_dict(),
            "loader": {"workers": loader[0], "threads": loader[1]},
            "cache": {s.split: {"path": str(s.path), "from_cache": s.from_cache} for s in (train, evals)},
        }
        record.status = "ok"
        record.throughput = {
            "train_images_per_s": None,
            "eval_images_per_s": None,
            "feature_train_images_per_s": train.images_per_s,
            "feature_eval_images_per_s": evals.images_per_s,
            "measured": "feature extraction per split, end to end (decoding included); null where cached",
        }
        record.wall_time_s = {
            "setup": round(built - started, 3),
            "features": round(features_done - built, 3),
            "probe": round(finished - features_done, 3),
        }
        record.dataset.update(n_train_images=len(train.ids), n_eval_images=len(evals.ids))
    except Exception as err:  # noqa: BLE001 - one model's failure must not stop the sweep
        record.error = f"{type(err).__name__}: {err}"
        record.status, record.metrics = "failed", None
        for section in (*sections, "features"):
            record.extra.pop(section, None)
        ids = scores = labels = None
        log.error("%s failed: %s", model_name, record.error)
        log.debug("%s", traceback.format_exc())
    record.wall_time_s = {**(record.wall_time_s or {}), "total": round(time.perf_counter() - started, 3)}
    record.peak_rss_mb = peak_rss_mb()
    write_run(run_dir, record, ids, scores, labels)
    return record


def run_frozen_baseline(
    *, protocol: FrozenProtocol, data: DataSource, out_dir: str | Path, command: str | None = None
) -> RunRecord:
    """The label-prior baseline under a frozen protocol's splits and labels (every eval image
    scored with the training split's class frequencies), in ``<out>/prior-baseline-<name>``."""
    return run_prior_baseline(
        protocol=protocol, data=data, out_dir=out_dir, command=command, config_update={"probe": "label priors"},
    )


def run_frozen_sweep(
    models: Sequence[str],
    *,
    protocol: FrozenProtocol,
    data: DataSource,
    out_dir: str | Path,
    weights: Mapping[str, Weights],
    pretrained: str = "auto",
    options: FrozenOptions = FrozenOptions(),
    command: str | None = None,
    baseline: bool = True,
    resume: bool = False,
    seeds: Sequence[int] | None = None,
    on_record: OnRecord | None = None,
    shard: Shard = WHOLE,
) -> list[RunRecord]:
    """The prior baseline (optional), then every model once per seed (``seeds``, default the
    protocol's seed) under ``protocol``; each finished record goes to ``on_record``. ``shard``:
    only this shard's share of the runs (``bench.train.runner.sweep``)."""
    return sweep(
        models,
        seeds=seeds if seeds else [protocol.seed],
        weights=weights,
        baseline=(lambda: run_frozen_baseline(protocol=protocol, data=data, out_dir=out_dir, command=command))
        if baseline
        else None,
        run_one=lambda model_name, seed, model_weights: run_frozen_model(
            model_name, protocol=replace(protocol, seed=seed), data=data, out_dir=out_dir,
            weights=model_weights, pretrained=pretrained, options=options, command=command, resume=resume,
        ),
        on_record=on_record,
        shard=shard,
    )
