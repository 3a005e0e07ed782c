"""Run records on disk: ``result.json`` and ``predictions.csv`` per run, written atomically."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.csv"


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


def predictions_csv(ids: Sequence[str], scores: np.ndarray, class_names: Sequence[str]) -> str:
    """``image_id`` + one probability column per class, the format ``python -m voc evaluate`` reads."""
    if len(ids) != len(scores):
        raise ValueError(f"{len(ids)} ids but {len(scores)} rows of scores")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image_id", *class_names])
    for image_id, row in zip(ids, scores):
        writer.writerow([image_id, *(repr(float(v)) for v in row)])
    return buf.getvalue()


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


def run_dir_name(model: str) -> str:
    """A folder name for a model's run: the timm name with anything unsafe replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model)


def read_records(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every ``*/result.json`` under ``out_dir``, sorted by folder name; unreadable ones are
    skipped with a warning naming the file."""
    records = []
    for path in sorted(Path(out_dir).glob(f"*/{RESULT_FILE}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            log.warning("skipping %s: not a readable result (%s)", path, err)
            continue
        if not isinstance(record, dict) or "model" not in record or "status" not in record:
            log.warning("skipping %s: not a voc-bench result record", path)
            continue
        records.append(record)
    return records
