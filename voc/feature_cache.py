"""On-disk cache of per-image feature vectors: float32 ``[N, D]`` in ``<stem>.npy`` and the image ids
with the cache key in ``<stem>.json``. Torch-free.

An entry is found by its key: a JSON-able dict that names everything the features depend on (the
caller decides: model, weights, data, split, view, precision, ...) plus this module's
:data:`FORMAT_VERSION`. The file stem is a readable name and the key's hash, so a change of any
part of the key is a different entry; the JSON repeats the whole key, which a load compares. Both
files are written atomically (``voc.io``), the JSON last: an entry without its JSON does not exist.
Deleting the folder clears the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voc.io import atomic_output, write_json_atomic

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Part of every key: a change of what is stored, or of how features are computed, bumps it."""


def _canonical(key: Mapping[str, Any]) -> Any:
    """``key`` as JSON would read it back (tuples become lists), with the format version."""
    return json.loads(json.dumps({**key, "format": FORMAT_VERSION}, sort_keys=True, default=str))


def key_digest(key: Mapping[str, Any]) -> str:
    """The first 16 hex digits of the SHA-256 of the key's sorted-key JSON (format version included)."""
    return hashlib.sha256(json.dumps(_canonical(key), sort_keys=True).encode()).hexdigest()[:16]


def files_digest(paths: Sequence[Path]) -> str:
    """A digest of files' paths, sizes and modification times (as ``voc.cache`` keys images), for a
    key that changes when an image is replaced in place."""
    digest = hashlib.sha256()
    for path in paths:
        stat = Path(path).stat()
        digest.update(f"|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class FeatureCache:
    """A folder of cached feature arrays, each under a readable ``name`` (e.g. ``resnet50-trainval``)
    and the hash of its key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def paths(self, name: str, key: Mapping[str, Any]) -> tuple[Path, Path]:
        """The ``.npy`` and ``.json`` of the entry ``name`` with ``key``."""
        stem = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{key_digest(key)}"
        return self.root / f"{stem}.npy", self.root / f"{stem}.json"

    def load(self, name: str, key: Mapping[str, Any], ids: Sequence[str]) -> np.ndarray | None:
        """The cached features of ``ids`` (in that order) under ``key``; ``None`` when there is no
        entry, its key or ids differ, or its files do not read back as float32 ``[len(ids), D]``
        (then it is logged and the caller computes them again)."""
        npy, meta_path = self.paths(name, key)
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            features = np.load(npy, allow_pickle=False)
        except (OSError, ValueError) as err:
            log.warning("feature cache entry %s does not read (%s): computing the features again", npy, err)
            return None
        if meta.get("key") != _canonical(key) or meta.get("ids") != list(ids):
            log.warning("feature cache entry %s is for other images or another key: computing the features again", npy)
            return None
        if features.dtype != np.float32 or features.ndim != 2 or features.shape[0] != len(ids):
            log.warning("feature cache entry %s has shape %s %s, not float32 [%d, D]: computing again",
                        npy, features.shape, features.dtype, len(ids))
            return None
        return features

    def save(self, name: str, key: Mapping[str, Any], ids: Sequence[str], features: np.ndarray) -> Path:
        """Store float32 ``features`` ``[len(ids), D]`` of ``ids`` under ``key``; returns the ``.npy``."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] != len(ids):
            raise ValueError(f"{len(ids)} ids but features of shape {features.shape}")
        npy, meta_path = self.paths(name, key)
        with atomic_output(npy, "wb") as fh:
            np.save(fh, features, allow_pickle=False)
        write_json_atomic(
            meta_path,
            {"key": _canonical(key), "ids": list(ids), "shape": list(features.shape), "dtype": "float32"},
        )
        return npy
