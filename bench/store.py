"""Run records on disk: ``result.json`` and ``predictions.csv`` per run, written atomically."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from voc.constants import VOC_CLASSES
from voc.errors import VOCDataError
from voc.tables import align, read_class_csv

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.csv"
"""Eval-image probabilities: ``image_id`` + 20 class columns (``voc.tables``)."""
LABELS_FILE = "labels.csv"
"""The eval images' labels (1 / 0 / -1) as scored, same format: a run folder is self-contained."""


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path`` and rename it over ``path``: readers see the
    old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """``obj`` as indented JSON (NaN not allowed: use ``None``), atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def lock_file(path: str | Path, *, wait: bool) -> IO[str] | None:
    """An exclusive ``flock`` on ``path`` (created if needed): the open file, which holds the lock
    until closed or the process ends (a killed process too). With ``wait=False``, ``None`` if
    another process holds it. Where ``fcntl`` does not exist, the open file without a lock."""
    handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.close()
        return None
    return handle


DEFAULT_SEED_FOLDER = 0
"""Runs of this seed (the protocol's default) are stored under the bare model name."""


def run_dir_name(model: str, seed: int = DEFAULT_SEED_FOLDER) -> str:
    """A folder name for a model's run: the timm name with anything unsafe replaced, and
    ``-seed<k>`` for a seed other than the default, so each seed of a ``--seeds`` sweep keeps its
    own folder (and ``--resume`` finds it again)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", model)
    return name if seed == DEFAULT_SEED_FOLDER else f"{name}-seed{seed}"


@dataclass(frozen=True)
class Run:
    """One stored run: its folder and its ``result.json`` record."""

    dir: Path
    record: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.record.get("status") == "ok"


@dataclass(frozen=True)
class EvalData:
    """A run's eval predictions with their labels, rows sorted by image id."""

    ids: tuple[str, ...]
    scores: np.ndarray
    labels: np.ndarray


def read_runs(out_dir: str | Path) -> list[Run]:
    """Every ``*/result.json`` under ``out_dir``, sorted by folder name; unreadable ones are
    skipped with a warning naming the file."""
    runs = []
    for path in sorted(Path(out_dir).glob(f"*/{RESULT_FILE}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            log.warning("skipping %s: not a readable result (%s)", path, err)
            continue
        if not isinstance(record, dict) or "model" not in record or "status" not in record:
            log.warning("skipping %s: not a voc-bench result record", path)
            continue
        runs.append(Run(path.parent, record))
    return runs


def read_records(out_dir: str | Path) -> list[dict[str, Any]]:
    """The records of :func:`read_runs`."""
    return [run.record for run in read_runs(out_dir)]


def _labels_from_dataset(run: Run) -> pd.DataFrame:
    """Labels of the run's eval split read again from its VOC tree (runs written before
    ``labels.csv`` existed)."""
    from voc.dataset import load_labels

    dataset, config = run.record.get("dataset") or {}, run.record.get("config") or {}
    root = dataset.get("root")
    if not root or not Path(root).exists():
        raise VOCDataError(f"no {LABELS_FILE} in {run.dir}, and the run's dataset root {root!r} is not there to read them from")
    ids, labels = load_labels(
        root, dataset.get("year", config.get("year")), dataset.get("eval_split", config.get("eval_split")),
        source=config.get("label_source", "annotations"), difficult=config.get("difficult", "negative"),
    )
    return pd.DataFrame(labels.astype(np.float64), index=pd.Index(ids, name="image_id"), columns=list(VOC_CLASSES))


def load_eval(run: Run) -> EvalData:
    """The run's ``predictions.csv`` and its labels (``labels.csv``, else the dataset), aligned by
    image id. Raises VOCDataError naming the file when either is missing or malformed."""
    scores_path, labels_path = run.dir / PREDICTIONS_FILE, run.dir / LABELS_FILE
    scores = read_class_csv(scores_path, "predictions")
    if labels_path.is_file():
        labels = read_class_csv(labels_path, "labels")
    else:
        labels = _labels_from_dataset(run).loc[lambda f: f.index.isin(scores.index)]
    labels = labels.sort_index()
    score_values, label_values = align(scores, labels, scores_path, labels_path)
    return EvalData(tuple(labels.index), score_values, label_values)
