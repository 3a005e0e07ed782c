"""The label-prior baseline: every eval image scored with the training split's class frequencies."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import DataSource
from bench.protocols.settings import FrozenProtocol, Protocol
from bench.store import BASELINE_NAME, DEFAULT_SEED_FOLDER, RunRecord, protocol_run_dir_name, write_run
from bench.train.checks import protocol_dataset
from bench.train.experiment import is_global_zero
from voc.metrics import evaluate

log = logging.getLogger(__name__)


def new_record(name: str, protocol: Protocol, data: DataSource, command: str | None) -> RunRecord:
    """A ``failed`` record of ``name`` under ``protocol`` on ``data``, to be filled in by the run."""
    return RunRecord(
        model=name,
        status="failed",
        error=None,
        weights=None,
        dataset=data.to_record(protocol.year, protocol.train_split, protocol.eval_split),
        config=protocol.to_dict(),
        metrics=None,
        throughput=None,
        wall_time_s=None,
        params=None,
        environment=None,
        command=command,
    )


def run_prior_baseline(
    *,
    protocol: Protocol | FrozenProtocol,
    data: DataSource,
    out_dir: str | Path,
    command: str | None = None,
    folder: str | None = None,
    config_update: Mapping[str, Any] | None = None,
) -> RunRecord:
    """Score every eval image with the training split's class frequencies and store the run in
    ``out_dir/folder`` (default: ``prior-baseline``, with ``-<protocol>`` for every protocol but the
    course's); ``config_update`` is applied to the recorded config (default: 0 epochs)."""
    if folder is None:
        folder = protocol_run_dir_name(BASELINE_NAME, DEFAULT_SEED_FOLDER, protocol.name)
    run_dir = Path(out_dir) / folder
    record = new_record(BASELINE_NAME, protocol, data, command)
    record.weights = "train-split label priors"
    record.config = {**record.config, **(config_update if config_update is not None else {"epochs": 0})}
    ids = scores = labels = None
    try:
        train = protocol_dataset(protocol, data, protocol.train_split)
        evalset = protocol_dataset(protocol, data, protocol.eval_split)
        ids = list(evalset.ids)
        scores = np.tile(train.label_frequencies(), (len(ids), 1))
        labels = evalset.labels
        record.status = "ok"
        record.metrics = evaluate(scores, evalset.labels.astype(np.int64))
        record.params = 0
        record.dataset.update(n_train_images=len(train), n_eval_images=len(evalset))
    except Exception as err:  # noqa: BLE001 - the baseline's failure is a record, not a crash
        record.error = f"{type(err).__name__}: {err}"
        ids = scores = labels = None
        log.error("%s failed: %s", BASELINE_NAME, record.error)
    if is_global_zero():
        write_run(run_dir, record, ids, scores, labels)
    return record
