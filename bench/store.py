"""The run store: the layout of a results folder, the run records in it, and the lock that guards it.

A results folder (``--out``) holds one folder per run (:func:`run_dir_name`) with ``result.json``
(a :class:`RunRecord`, stamped with :data:`SCHEMA_VERSION`), ``predictions.csv`` and ``labels.csv``,
and beside them the leaderboard and the report. Every file name is defined here, once. Files are
written atomically (``voc.io``), so a reader sees the old file or the new one, never half of one.

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
"""In the results folder: the speed job's measurements (``python benchmark.py speed``)."""
BASELINE_NAME = "prior-baseline"
"""Model name and run folder of the label-prior baseline (every eval image scored with the training
split's class frequencies): every table's floor."""

DEFAULT_PROTOCOL = "course"
"""The course protocol's name: its runs keep the bare folder names (:func:`protocol_run_dir_name`)."""
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
"""The value of an optional key (:attr:`RunRecord.config_hash`, :attr:`RunRecord.peak_rss_mb`,
:attr:`RunRecord.weights_sha256`) in a record without it: the label-prior baseline's has neither
``config_hash`` nor ``peak_rss_mb``; ``weights_sha256`` only comes with hashed weights."""

SCHEMA_VERSION: Final = 1
"""The version of the ``result.json`` format that this code writes, and the newest it reads: the
record's first key, ``schema_version``. It is bumped when a change to the format would make an older
reader misread a record (a key removed, renamed or given another meaning), not for a new key that
older readers can keep as an unknown one. A record without it, or with a higher one, is refused
(:meth:`RunRecord.from_dict`)."""

_SCHEMA_KEY = "schema_version"
_REQUIRED_KEYS: tuple[str, ...] = (
    "model", "status", "error", "weights", "dataset", "config", "metrics", "throughput", "wall_time_s", "params",
    "environment", "command",
)
"""Keys every record has (``null`` where a run did not get that far)."""
_REQUIRED_NESTED: dict[str, tuple[str, ...]] = {
    "config": ("name", "seed"),
    "dataset": ("description", "root", "year", "eval_split"),
}
"""Keys of a record's ``config`` and ``dataset`` every record has, which grouping and the report read."""
_OPTIONAL_KEYS: tuple[str, ...] = ("config_hash", "peak_rss_mb", "weights_sha256")
_KNOWN_KEYS: tuple[str, ...] = (_SCHEMA_KEY, *_REQUIRED_KEYS, *_OPTIONAL_KEYS)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class RunRecord:
    """One run's ``result.json``: what ran (model, weights, data, protocol), how it ended, what it
    scored and what it cost.

    :meth:`to_dict` writes ``schema_version`` (:data:`SCHEMA_VERSION`) first, then the keys in the
    order of the fields, then :attr:`extra`; the optional keys (``config_hash``, ``peak_rss_mb``,
    ``weights_sha256``) are left out where they are :data:`ABSENT` (``None`` is written as ``null``),
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
    def from_dict(cls, data: Any, path: str | Path | None = None) -> RunRecord:
        """The record of a parsed ``result.json`` (read from ``path``, which errors name).

        Raises VOCDataError when ``data`` is not a record of a schema this code reads: not a JSON
        object, no ``schema_version`` or a higher one than :data:`SCHEMA_VERSION`, or a key that
        every record has missing (at the top level, or in ``config`` and ``dataset``).
        """
        if not isinstance(data, dict):
            raise VOCDataError(
                f"not a voc-bench run record (a JSON {type(data).__name__}, not an object): "
                "move it out of the results folder", path,
            )
        _check_schema_version(data, path)
        missing = [key for key in _REQUIRED_KEYS if key not in data]
        missing += [f"{section}.{key}" for section, keys in _REQUIRED_NESTED.items() if section not in missing
                    for key in keys if not isinstance(data[section], dict) or key not in data[section]]
        if missing:
            raise VOCDataError(
                f"a run record of schema_version {SCHEMA_VERSION} has every one of {list(_REQUIRED_KEYS)}; "
                f"this one lacks {missing} (edited by hand?): run the model again, or restore the file", path,
            )
        return cls(
            **{key: data[key] for key in _REQUIRED_KEYS},
            **{key: data.get(key, ABSENT) for key in _OPTIONAL_KEYS},
            extra={key: value for key, value in data.items() if key not in _KNOWN_KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``result.json``, ``schema_version`` first (its nested dicts are the
        record's own, not copies)."""
        data: dict[str, Any] = {_SCHEMA_KEY: SCHEMA_VERSION}
        data.update((key, getattr(self, key)) for key in (*_REQUIRED_KEYS, *_OPTIONAL_KEYS))
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
        """The protocol's name (``config["name"]``, e.g. ``"course"``)."""
        return str(self.config["name"])

    @property
    def seed(self) -> int:
        """The training seed (``config["seed"]``)."""
        return self.config["seed"]

    @property
    def epochs(self) -> int | None:
        """The training epochs (``None`` for the frozen protocols, which train none)."""
        return self.config.get("epochs")

    @property
    def data_description(self) -> str:
        """The data in words, e.g. ``"VOC2012 train → val"``."""
        return self.dataset["description"]

    @property
    def dataset_root(self) -> str:
        """The VOC tree the run read."""
        return self.dataset["root"]

    @property
    def year(self) -> str:
        """The VOC year of the data."""
        return self.dataset["year"]

    @property
    def eval_split(self) -> str:
        """The split the run was evaluated on."""
        return self.dataset["eval_split"]

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


def _check_schema_version(data: dict[str, Any], path: str | Path | None) -> None:
    """Raise VOCDataError naming ``path`` where ``data`` has no ``schema_version``, or one that is
    not a version this code reads."""
    if _SCHEMA_KEY not in data:
        raise VOCDataError(
            f"no {_SCHEMA_KEY}: not a voc-bench run record, or one written before records had a version "
            "(voc-bench 0.1.0), which this voc-bench does not read. Move it out of the results folder, or run "
            "the model again to write a current record", path,
        )
    version = data[_SCHEMA_KEY]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise VOCDataError(
            f"{_SCHEMA_KEY} {version!r} is not one voc-bench writes (an integer from 1): not a voc-bench run "
            "record. Move it out of the results folder, or run the model again to write a record", path,
        )
    if version > SCHEMA_VERSION:
        raise VOCDataError(
            f"{_SCHEMA_KEY} {version}, but this voc-bench reads records up to {_SCHEMA_KEY} {SCHEMA_VERSION}: "
            "the record was written by a newer voc-bench. Upgrade voc-bench (git pull, then "
            "pip install -e .) to read it", path,
        )


def read_record(run_dir: str | Path) -> RunRecord | None:
    """The record in ``run_dir/result.json`` (e.g. to find, for ``--resume``, a finished record with
    the same ``config_hash``); ``None`` where there is none or it is not JSON (cut short). Raises
    VOCDataError naming the file where it is JSON but not a record this code reads (no or a newer
    ``schema_version``): a run never overwrites a record it cannot read without saying so."""
    path = Path(run_dir) / RESULT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return RunRecord.from_dict(data, path)


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
    """Every ``*/result.json`` under ``out_dir``, sorted by folder name. One that is not JSON (cut
    short) is skipped with a warning naming the file; one that is JSON but not a record this code
    reads (no or a newer ``schema_version``, a missing key) raises VOCDataError naming the file,
    so no table is built without a record it should hold."""
    runs = []
    for path in sorted(Path(out_dir).glob(f"*/{RESULT_FILE}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            log.warning("skipping %s: not a readable result (%s)", path, err)
            continue
        runs.append(Run(path.parent, RunRecord.from_dict(data, path)))
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


def load_eval(run: Run) -> EvalData:
    """The run's ``predictions.csv`` and ``labels.csv``, aligned by image id. Raises VOCDataError
    naming the file when either is missing or malformed."""
    scores_path, labels_path = run.dir / PREDICTIONS_FILE, run.dir / LABELS_FILE
    scores = read_class_csv(scores_path, "predictions")
    labels = read_class_csv(labels_path, "labels").sort_index()
    score_values, label_values = align(scores, labels, scores_path, labels_path)
    return EvalData(tuple(labels.index), score_values, label_values)
