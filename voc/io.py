"""Crash-safe file output: every file this package writes appears whole or not at all.

The one implementation is :func:`atomic_output`: a temp file beside the target (same folder, so
same file system), written, flushed, ``fsync``-ed and renamed over the target with ``os.replace``.
Readers see the old file or the new one, never half of one; on any exception (KeyboardInterrupt
included) the temp file is removed and the old file is left as it was. :func:`atomic_write` and
:func:`write_json_atomic` are built on it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

_MODES: tuple[str, ...] = ("w", "wb")


@lru_cache(maxsize=1)
def _umask() -> int:
    """The process's umask (read once: ``os.umask`` can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """An open file whose content replaces ``path`` when the ``with`` block ends without error.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (text, UTF-8, ``newline=""``: no newline translation).
    Parent folders are created. The temp file is ``.<name>.<random>.tmp`` beside ``path``; it is
    flushed and ``fsync``-ed before the rename, and removed if anything raises. The new file gets
    the permissions a plain ``open(path, "w")`` would give (0o666 less the umask).
    """
    if mode not in _MODES:
        raise ValueError(f"Unsupported mode {mode!r} for an atomic write. Valid values are {list(_MODES)}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`): bytes as they are, text
    as UTF-8 without newline translation."""
    with atomic_output(path, "w" if isinstance(data, str) else "wb") as fh:
        fh.write(data)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """``obj`` as ``json.dumps(obj, indent=2, allow_nan=False)`` plus a newline, atomically.

    NaN and infinity are refused (ValueError, before anything is written): write ``None``.
    """
    atomic_write(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
