"""The run store: the layout of a results folder, the run records in it, and the lock that guards it.

A results folder (``--out``) holds one folder per run (:func:`run_dir_name`) with ``result.json``
(a :class:`RunRecord`), ``predictions.csv`` and ``labels.csv``, and beside them the leaderboard and
the report. Every file name is defined here, once. Files are written atomically (``voc.io``), so a
reader sees the old file or the new one, never half of one.

Torch-free: the reporting side (``bench.report``) reads records without loading a training stack.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import pandas as pd

from voc.constants import VOC_CLASSES
from voc.errors import VOCDataError
from voc.io import atomic_write, write_json_atomic
from voc.tables import align, class_table_csv, read_class_csv

log = logging.getLogger(__name__)

# -- the layout of a results folder ----------------------------------------------------------

RESULT_FILE = "result.json"
"""In each run folder: the run's :class:`RunRecord` (status, metrics, protocol, data, weights, ...)."""
PREDICTIONS_FILE = "predictions.csv"
"""In each run folder: eval-image probabilities, ``image_id`` + 20 class columns (``voc.tables``)."""
LABELS_FILE = "labels.csv"
"""In each run folder: the eval images' labels (1 / 0 / -1) as scored, same format: a run folder is
self-contained."""
RUN_LOCK_FILE = ".run.lock"
"""In each run folder: held (:func:`locked`) by the sweep that is running a model in that folder."""
RUN_CONFIG_FILE = "run_config.json"
"""In each run folder: written when a run starts, the config hash its checkpoints belong to."""
CHECKPOINT_DIR = "checkpoints"
"""In each run folder; ``last.ckpt`` is the model after the latest finished epoch."""
LOG_DIR = "logs"
"""In each run folder: Lightning's CSV (and TensorBoard) logs of the run (not committed)."""
METRICS_LOG = "metrics.csv"
"""In :data:`LOG_DIR`: Lightning's CSVLogger table, one row per logging step and per epoch
(``train_loss_epoch``; ``val_mAP`` and ``val_ema_mAP`` with ``--eval-every``)."""
LEADERBOARD_MD = "leaderboard.md"
"""In the results folder: the ranked table, rebuilt from every record."""
LEADERBOARD_CSV = "leaderboard.csv"
"""In the results folder: the leaderboard's unformatted numbers, interval bounds and per-class AP."""
LEADERBOARD_LOCK = ".leaderboard.lock"
"""In the results folder: held (:func:`locked`) while the leaderboard or the report is rebuilt."""
REPORT_MD = "report.md"
"""In the results folder, beside the leaderboard, which links to it: figures, galleries, confidence."""
REPORT_DIR = "report"
"""In the results folder: the PNGs and galleries of ``report.md`` (replaced on every rebuild)."""
SPEED_FILE = "speed.json"
SPEED_DATA_FILE = "speed_data.json"
"""In the results folder: the ``--speed`` measurements."""
BASELINE_NAME = "prior-baseline"
"""Model name and run folder of the label-prior baseline (every eval image scored with the training
split's class frequencies): every table's floor."""

DEFAULT_PROTOCOL = "course"
"""The protocol of a record that names none (written before protocols had names)."""
DEFAULT_SEED_FOLDER = 0
"""Runs of this seed (the protocol's default) are stored under the bare model name."""


def run_dir_name(model: str, seed: int = DEFAULT_SEED_FOLDER) -> str:
    """A folder name for a model's run: the timm name with anything unsafe replaced, and
    ``-seed<k>`` for a seed other than the default, so each seed of a ``--seeds`` sweep keeps its
    own folder (and ``--resume`` finds it again)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", model)
    return name if seed == DEFAULT_SEED_FOLDER else f"{name}-seed{seed}"


def protocol_run_dir_name(model: str, seed: int, protocol: str) -> str:
    """:func:`run_dir_name`, with ``-<protocol>`` after it for every protocol but the course one
    (whose runs keep the bare names they always had): ``resnet50``, ``resnet50-modern``,
    ``resnet50-seed1-linear``, ``prior-baseline-voc07``. Runs of different protocols never share a folder."""
    base = run_dir_name(model, seed)
    return base if protocol == DEFAULT_PROTOCOL else f"{base}-{protocol}"


# -- the lock --------------------------------------------------------------------------------


def _flock(handle: IO[str], wait: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS: no lock, as before
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


@contextmanager
def locked(path: str | Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed; its folder must exist) for the
    ``with`` block, and yield ``True``.

    With ``wait=False``, yield ``False`` at once where another process holds it (nothing is held
    then). The lock is released when the block exits, or when the process ends, a killed one too.
    Where ``fcntl`` does not exist, yield ``True`` without a lock.
    """
    with open(path, "a", encoding="utf-8") as handle:
        yield _flock(handle, wait)  # closing the file releases the lock


# -- records ---------------------------------------------------------------------------------


class Absent(enum.Enum):
    """Marks an optional key that a record does not have, as opposed to one stored as ``null``."""

    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = Absent.ABSENT
"""The value of :attr:`RunRecord.config_hash` and :attr:`RunRecord.peak_rss_mb` in records without
them: the label-prior baseline's, and records written before ``--resume`` existed."""

_KNOWN_KEYS: tuple[str, ...] = (
    "model", "status", "error", "weights", "dataset", "config", "metrics", "throughput", "wall_time_s", "params",
    "environment", "command", "config_hash", "peak_rss_mb", "weights_sha256",
)
_OPTIONAL_KEYS = ("config_hash", "peak_rss_mb", "weights_sha256")


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class RunRecord:
    """One run's ``result.json``: what ran (model, weights, data, protocol), how it ended, what it
    scored and what it cost.

    :meth:`to_dict` writes the keys in the order of the fields, then :attr:`extra`; ``config_hash``
    and ``peak_rss_mb`` are left out where they are :data:`ABSENT` (``None`` is written as ``null``),
    so ``from_dict`` then ``to_dict`` gives back the same JSON a record was read from.
    """

    model: str
    status: str
    """``"ok"``, or ``"failed"`` with :attr:`error`."""
    error: str | None = None
    weights: str | None = None
    """Where the initial weights came from, e.g. ``"random init"``."""
    dataset: dict[str, Any] = field(default_factory=dict)
    """root, year, splits, description, image counts (``bench.data.DataSource.to_record``)."""
    config: dict[str, Any] = field(default_factory=dict)
    """The protocol (``Protocol.to_dict``): epochs, seed, lr, ..."""
    metrics: dict[str, Any] | None = None
    """``voc.metrics.evaluate``'s dict: accuracy, mAP, tail_accuracy, tail_curve, per_class, ..."""
    throughput: dict[str, Any] | None = None
    """train_images_per_s, eval_images_per_s (steady state, all processes), how they were measured."""
    wall_time_s: dict[str, Any] | None = None
    params: int | None = None
    environment: dict[str, Any] | None = None
    command: str | None = None
    """The command line that wrote the record."""
    config_hash: str | None | Absent = ABSENT
    """Identifies the configuration for ``--resume``."""
    peak_rss_mb: float | None | Absent = ABSENT
    """The process's peak resident memory during the run (``None``: not measurable here)."""
    weights_sha256: str | None | Absent = ABSENT
    """The SHA-256 of the initial weights' source file, where they came from one that was hashed
    (an installed weight package's checkpoint)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this class does not know, in their order: kept, and written back after the others."""

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """The record of a parsed ``result.json``. Raises ValueError when it is not a JSON object
        with ``model`` and ``status`` (TypeError when it is not an object at all)."""
        if not isinstance(data, dict):
            raise TypeError(f"a run record is a JSON object, not {type(data).__name__}")
        missing = [key for key in ("model", "status") if key not in data]
        if missing:
            raise ValueError(f"a run record needs {' and '.join(missing)}")
        return cls(
            model=data["model"],
            status=data["status"],
            error=data.get("error"),
            weights=data.get("weights"),
            dataset=data.get("dataset") or {},
            config=data.get("config") or {},
            metrics=data.get("metrics"),
            throughput=data.get("throughput"),
            wall_time_s=data.get("wall_time_s"),
            params=data.get("params"),
            environment=data.get("environment"),
            command=data.get("command"),
            config_hash=data.get("config_hash", ABSENT),
            peak_rss_mb=data.get("peak_rss_mb", ABSENT),
            weights_sha256=data.get("weights_sha256", ABSENT),
            extra={key: value for key, value in data.items() if key not in _KNOWN_KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``result.json`` (its nested dicts are the record's own, not copies)."""
        data: dict[str, Any] = {key: getattr(self, key) for key in _KNOWN_KEYS}
        for key in _OPTIONAL_KEYS:
            if data[key] is ABSENT:
                del data[key]
        clash = sorted(set(self.extra) & set(_KNOWN_KEYS))
        if clash:
            raise ValueError(f"RunRecord.extra repeats the record's own keys {clash}")
        data.update(self.extra)
        return data

    @property
    def ok(self) -> bool:
        """Whether the run finished and was evaluated."""
        return self.status == "ok"

    @property
    def protocol(self) -> str:
        """The protocol's name (``config["name"]``); records written before protocols had names are
        the course protocol's."""
        return str(self.config.get("name") or DEFAULT_PROTOCOL)

    @property
    def seed(self) -> int:
        """The training seed (0 where the protocol names none)."""
        return self.config.get("seed", 0)

    @property
    def epochs(self) -> int | None:
        return self.config.get("epochs")

    @property
    def data_description(self) -> str:
        """The data in words, e.g. ``"VOC2012 train → val"`` (``""`` where the record has none)."""
        return self.dataset.get("description", "")

    @property
    def dataset_root(self) -> str | None:
        """The VOC tree the run read (``None`` where the record names none)."""
        return self.dataset.get("root")

    @property
    def year(self) -> str | None:
        """The VOC year of the data (the dataset's, else the protocol's)."""
        return self.dataset.get("year", self.config.get("year"))

    @property
    def eval_split(self) -> str | None:
        """The split the run was evaluated on (the dataset's, else the protocol's)."""
        return self.dataset.get("eval_split", self.config.get("eval_split"))

    def metric(self, key: str) -> float | None:
        """``metrics[key]`` as a float, e.g. ``"mAP"``; ``None`` where absent or ``null``."""
        return _float_or_none((self.metrics or {}).get(key))

    def throughput_value(self, key: str) -> float | None:
        """``throughput[key]`` as a float, e.g. ``"train_images_per_s"``; ``None`` where absent."""
        return _float_or_none((self.throughput or {}).get(key))

    @property
    def per_class_ap(self) -> dict[str, float | None]:
        """Each class's non-interpolated AP by class name (``None`` where undefined, e.g. no positive
        image); only the classes the record has."""
        return self.per_class_values("ap")

    def per_class_values(self, key: str) -> dict[str, float | None]:
        """Each class's ``per_class[<class>][key]`` (e.g. ``"ap_voc07"``) by class name; ``None`` where
        undefined or absent."""
        per_class = (self.metrics or {}).get("per_class") or {}
        return {name: _float_or_none((values or {}).get(key)) for name, values in per_class.items()}

    @property
    def tail_curve(self) -> dict[str, Any] | None:
        """The mean tail-accuracy curve, ``{"thresholds": [...], "values": [...]}``, if recorded."""
        return (self.metrics or {}).get("tail_curve")


def read_record(run_dir: str | Path) -> RunRecord | None:
    """The record in ``run_dir/result.json``; ``None`` where there is none or it is not a readable
    record (e.g. to find, for ``--resume``, a finished record with the same ``config_hash``)."""
    try:
        return _load_record(Path(run_dir) / RESULT_FILE)
    except (OSError, ValueError, TypeError):  # json.JSONDecodeError is a ValueError
        return None


def _load_record(path: Path) -> RunRecord:
    return RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))


# -- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One stored run: its folder and its record."""

    dir: Path
    record: RunRecord

    @property
    def ok(self) -> bool:
        return self.record.ok


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
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            log.warning("skipping %s: not a readable result (%s)", path, err)
            continue
        try:
            record = RunRecord.from_dict(data)
        except (ValueError, TypeError):
            log.warning("skipping %s: not a voc-bench result record", path)
            continue
        runs.append(Run(path.parent, record))
    return runs


def read_records(out_dir: str | Path) -> list[RunRecord]:
    """The records of :func:`read_runs`."""
    return [run.record for run in read_runs(out_dir)]


def write_run(
    run_dir: str | Path,
    record: RunRecord,
    ids: Sequence[str] | None = None,
    scores: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> None:
    """Store a run: ``predictions.csv`` and ``labels.csv`` (as integers) where ``ids``, ``scores``
    and ``labels`` are all given, then ``result.json``; each file atomically, the record last, so a
    record never points at predictions that are not there yet."""
    run_dir = Path(run_dir)
    if ids is not None and scores is not None and labels is not None:
        atomic_write(run_dir / PREDICTIONS_FILE, class_table_csv(ids, scores))
        atomic_write(run_dir / LABELS_FILE, class_table_csv(ids, np.asarray(labels).astype(np.int64)))
    write_json_atomic(run_dir / RESULT_FILE, record.to_dict())


def _labels_from_dataset(run: Run) -> pd.DataFrame:
    """Labels of the run's eval split read again from its VOC tree (runs written before
    ``labels.csv`` existed)."""
    from voc.labels import load_labels

    record = run.record
    root = record.dataset_root
    if not root or not Path(root).exists():
        raise VOCDataError(
            f"no {LABELS_FILE} in {run.dir}, and the run's dataset root {root!r} is not there to read them from"
        )
    ids, labels = load_labels(
        root, record.year, record.eval_split,
        source=record.config.get("label_source", "annotations"), difficult=record.config.get("difficult", "negative"),
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
