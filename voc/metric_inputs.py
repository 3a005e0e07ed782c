"""The checks and helpers every metric in :mod:`voc.metrics` (and :mod:`voc.bootstrap`) applies to
its inputs: ``scores`` ``[N, C]`` in [0, 1] and ``labels`` ``[N, C]`` in {-1 (ignored), 0, 1}."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from voc.constants import IGNORED, NEGATIVE, POSITIVE


def check_inputs(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``scores`` / ``labels`` and return them as float64 / int8 arrays.

    Raises ValueError on a non-2-D or mismatched shape, labels outside {-1, 0, 1},
    non-finite scores, or scores outside [0, 1].
    """
    s = np.asarray(scores)
    y = np.asarray(labels)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D array [N, C], got shape {s.shape}")
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same shape, got {s.shape} and {y.shape}")
    if s.shape[1] == 0:
        raise ValueError("scores and labels need at least one class column (C >= 1)")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == bool):
        raise ValueError(f"scores must be numeric, got dtype {s.dtype}")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise ValueError(f"labels must be numeric, got dtype {y.dtype}")
    s = s.astype(np.float64, copy=False)
    bad_labels = ~np.isin(y, (IGNORED, NEGATIVE, POSITIVE))
    if bad_labels.any():
        found = np.unique(y[bad_labels])[:5].tolist()
        raise ValueError(f"labels must only contain -1 (ignored), 0 or 1; found {found}")
    if not np.isfinite(s).all():
        raise ValueError(f"scores must be finite; found {int((~np.isfinite(s)).sum())} NaN/inf value(s)")
    if s.size and (s.min() < 0.0 or s.max() > 1.0):
        raise ValueError(f"scores must lie in [0, 1]; found min {s.min():g}, max {s.max():g}")
    return s, y.astype(np.int8)


def check_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float; raise ValueError if it is not a finite number."""
    t = float(threshold)
    if not math.isfinite(t):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return t


def class_entries(s: np.ndarray, y: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and boolean positives of class ``c`` over its non-ignored entries."""
    keep = y[:, c] != IGNORED
    return s[keep, c], y[keep, c] == POSITIVE


def mean_or_nan(values: np.ndarray) -> float:
    """Mean of the non-NaN ``values``; NaN (without a numpy warning) if there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan
