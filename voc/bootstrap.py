"""Bootstrap confidence for VOC metrics: resample the eval images, recompute mAP and accuracy.

A resample draws N images with replacement from the N eval images; it is represented by how
many times each image was drawn (``counts``, shape ``[B, N]`` for B resamples), so every metric
here is the exact metric of the resampled set, computed without building it. The resamples
depend only on ``(n_images, n_resamples, seed)``: two models scored on the same images in the
same order see the same resamples, which is what a paired comparison needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from voc.constants import IGNORED, POSITIVE
from voc.metric_inputs import check_inputs, check_threshold
from voc.metrics import AP_DEFINITIONS

DEFAULT_RESAMPLES = 1000
"""Resamples per interval: the issue's minimum, enough for a stable 95% percentile interval."""
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95


def resample_counts(n_images: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """``[n_resamples, n_images]`` int32: how often each image is drawn in each resample
    (N draws with replacement, uniform). Deterministic for the same arguments."""
    if n_images <= 0:
        raise ValueError(f"need at least one image to resample, got {n_images}")
    if n_resamples <= 0:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, n_images), dtype=np.int32)
    for b in range(n_resamples):
        counts[b] = np.bincount(rng.integers(0, n_images, size=n_images), minlength=n_images)
    return counts


def _check_counts(counts: np.ndarray, n_images: int) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != n_images:
        raise ValueError(f"counts must have shape [B, {n_images}], got {counts.shape}")
    if (counts < 0).any():
        raise ValueError("counts must be non-negative")
    return counts


def _weighted_ap(s: np.ndarray, pos: np.ndarray, weights: np.ndarray, definition: str = "sklearn") -> np.ndarray:
    """AP of one class under each column of ``weights`` ([n, B]: how often each entry is drawn in
    each resample); NaN where a resample holds no positive. Same definition as
    :func:`voc.metrics.average_precision`: tied scores form one threshold, an entry drawn k times
    counts k times. ``definition`` is one of :data:`voc.metrics.AP_DEFINITIONS`: ``sklearn``
    (non-interpolated), ``voc07`` (11-point) or ``voc12`` (area under the precision envelope).

    Only thresholds whose tie group holds a positive move recall, so the sums are taken in segments
    ending at those groups (``np.add.reduceat``) rather than as a running sum over every entry.
    """
    n_resamples = weights.shape[1]
    if not pos.any():
        return np.full(n_resamples, np.nan)
    order = np.argsort(-s, kind="stable")
    s_sorted, pos_sorted, w = s[order], pos[order], weights[order]
    group = np.r_[0, np.cumsum(s_sorted[1:] != s_sorted[:-1])]  # tie-group index of each sorted entry
    group_end = np.r_[np.flatnonzero(np.diff(group)) + 1, s.size]  # exclusive end of each group
    pos_groups = np.unique(group[pos_sorted])  # groups holding at least one positive, in order
    cuts = group_end[pos_groups]
    # entries seen (drawn) down to the end of each positive group
    seen = np.cumsum(np.add.reduceat(w[: cuts[-1]], np.r_[0, cuts[:-1]], axis=0), axis=0, dtype=np.int64)
    # positives drawn down to the end of each positive group
    w_pos, pos_group_of = w[pos_sorted], group[pos_sorted]
    first_pos = np.r_[0, np.flatnonzero(np.diff(pos_group_of)) + 1]
    tp = np.cumsum(np.add.reduceat(w_pos, first_pos, axis=0), axis=0, dtype=np.int64)
    n_pos = tp[-1].astype(np.float64)
    gained = np.diff(tp, axis=0, prepend=0).astype(np.float64)
    precision = np.where(seen > 0, tp / np.maximum(seen, 1), 0.0)
    # Between two thresholds that gain recall, precision only falls (tp stays, seen grows), so the
    # envelope's running max and the 11-point maxima are reached at these thresholds too.
    if definition == "voc12":
        precision = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
    if definition == "voc07":
        ap = np.zeros(n_resamples)
        for k in range(11):
            reached = 10 * tp >= k * tp[-1]  # recall >= k/10, exactly in integers
            ap += np.where(reached, precision, 0.0).max(axis=0)
        ap /= 11.0
    elif definition in ("sklearn", "voc12"):
        with np.errstate(invalid="ignore", divide="ignore"):
            ap = (gained * precision).sum(axis=0) / np.maximum(n_pos, 1)
    else:
        raise ValueError(f"unknown AP definition {definition!r}; valid: {list(AP_DEFINITIONS)}")
    ap[n_pos == 0] = np.nan
    return ap


def bootstrap_average_precision(
    scores: np.ndarray, labels: np.ndarray, counts: np.ndarray, definition: str = "sklearn"
) -> np.ndarray:
    """Per-class AP of each resample, ``[B, C]`` (NaN where a resample has no positive of a class),
    under ``definition`` (a key of :data:`voc.metrics.AP_DEFINITIONS`); ignored ``-1`` entries are
    left out, as in :mod:`voc.metrics`."""
    if definition not in AP_DEFINITIONS:
        raise ValueError(f"unknown AP definition {definition!r}; valid: {list(AP_DEFINITIONS)}")
    s, y = check_inputs(scores, labels)
    weights = np.ascontiguousarray(_check_counts(counts, s.shape[0]).T)  # [N, B]: rows gather fast
    out = np.empty((weights.shape[1], s.shape[1]))
    for c in range(s.shape[1]):
        keep = y[:, c] != IGNORED
        out[:, c] = _weighted_ap(s[keep, c], y[keep, c] == POSITIVE, weights[keep], definition)
    return out


def bootstrap_map(
    scores: np.ndarray, labels: np.ndarray, counts: np.ndarray, definition: str = "sklearn"
) -> np.ndarray:
    """mAP of each resample under ``definition``, ``[B]``: the mean over the classes with a positive
    in that resample."""
    ap = bootstrap_average_precision(scores, labels, counts, definition)
    defined = ~np.isnan(ap)
    with np.errstate(invalid="ignore"):
        return np.where(defined.any(axis=1), np.nansum(ap, axis=1) / np.maximum(defined.sum(axis=1), 1), np.nan)


def bootstrap_accuracy(
    scores: np.ndarray, labels: np.ndarray, counts: np.ndarray, threshold: float = 0.5
) -> np.ndarray:
    """Entry-wise accuracy (as :func:`voc.metrics.accuracy`) of each resample, ``[B]``."""
    s, y = check_inputs(scores, labels)
    counts = _check_counts(counts, s.shape[0])
    t = check_threshold(threshold)
    keep = y != IGNORED
    correct = (((s > t) == (y == POSITIVE)) & keep).sum(axis=1).astype(np.float64)
    counted = keep.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ correct) / (counts @ counted)


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval: ``low``/``high`` bound the middle ``level`` of the resamples."""

    low: float
    high: float
    level: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def percentile_interval(replicates: np.ndarray, level: float = DEFAULT_LEVEL) -> Interval:
    """The percentile interval of bootstrap ``replicates`` (NaN replicates left out)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    values = np.asarray(replicates, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Interval(math.nan, math.nan, level)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return Interval(float(low), float(high), level)


def prob_not_better(replicates: np.ndarray, reference: np.ndarray) -> float:
    """Paired bootstrap: the share of resamples in which a model's metric is below the reference's
    (both computed on the same resamples), ties counting half. Near 1: it is truly worse; near 0.5
    (identical predictions give exactly 0.5): the two cannot be told apart. NaN if no resample has
    both values."""
    a, b = np.asarray(replicates, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired replicates must have the same shape, got {a.shape} and {b.shape}")
    both = ~(np.isnan(a) | np.isnan(b))
    if not both.any():
        return math.nan
    a, b = a[both], b[both]
    return float(np.mean(a < b) + 0.5 * np.mean(a == b))
