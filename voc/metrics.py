"""Multi-label classification metrics for VOC-style predictions.

Every function takes ``scores``, a float array ``[N, C]`` of probabilities in ``[0, 1]``,
and ``labels``, an int array ``[N, C]`` with values ``1`` (present), ``0`` (absent) and
``-1`` (ignored). An ignored ``(image, class)`` entry is left out of every metric: neither
its label nor its score has any effect on any number returned here.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voc.constants import IGNORED, POSITIVE, VOC_CLASSES
from voc.metric_inputs import check_inputs, check_threshold, class_entries, mean_or_nan

logger = logging.getLogger(__name__)

TAIL_CONVENTIONS: tuple[str, ...] = ("handout", "course")
"""Accepted values of ``convention`` in :func:`tail_accuracy_curve` (``"seed"``, the old name of
``"course"``, is still accepted with a DeprecationWarning)."""

_DEPRECATED_CONVENTIONS: dict[str, str] = {"seed": "course"}
"""Old convention name -> new name; accepted for one release with a DeprecationWarning."""

_COURSE_EPS = 1e-5
"""The constant the course project's code adds to the tail-accuracy denominator."""


# --------------------------------------------------------------------------- accuracy


def accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    """Entry-wise accuracy.

    The share of non-ignored ``(image, class)`` entries where ``score > threshold``
    equals ``label == 1`` (a score equal to the threshold is a negative prediction).
    NaN if every entry is ignored.
    """
    s, y = check_inputs(scores, labels)
    t = check_threshold(threshold)
    keep = y != IGNORED
    if not keep.any():
        return math.nan
    return float(((s > t) == (y == POSITIVE))[keep].mean())


# --------------------------------------------------------------------------- average precision


def _pr_points(s: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positive counts at each distinct score threshold, highest first.

    Tied scores form one threshold: the counts are taken after the last entry of each
    group of equal scores, so the result does not depend on the order of the entries.
    """
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    tps = np.cumsum(pos[order], dtype=np.int64)
    fps = np.arange(1, s.size + 1, dtype=np.int64) - tps
    last_of_group = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s.size - 1]
    return tps[last_of_group], fps[last_of_group]


def _area_under(s: np.ndarray, pos: np.ndarray, *, envelope: bool) -> float:
    """Σ_n (R_n − R_{n−1}) · P_n over the distinct thresholds, with P_n made monotone first
    (max over m >= n) when ``envelope``; NaN without positives."""
    n_pos = int(pos.sum())
    if n_pos == 0:
        return math.nan
    tp, fp = _pr_points(s, pos)
    precision = tp / (tp + fp)
    if envelope:  # the highest precision at this recall or beyond: a running max from the end
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(tp / n_pos, prepend=0.0) * precision))


def _binary_ap(s: np.ndarray, pos: np.ndarray) -> float:
    """Step-wise (non-interpolated) AP of one class; NaN without positives."""
    return _area_under(s, pos, envelope=False)


def _binary_ap_voc07(s: np.ndarray, pos: np.ndarray) -> float:
    """11-point interpolated AP of one class; NaN without positives."""
    n_pos = int(pos.sum())
    if n_pos == 0:
        return math.nan
    tp, fp = _pr_points(s, pos)
    precision = tp / (tp + fp)
    total = 0.0
    for k in range(11):
        # recall >= k/10  <=>  10 * tp >= k * n_pos, compared exactly in integers
        reached = 10 * tp >= k * n_pos
        total += float(precision[reached].max()) if reached.any() else 0.0
    return total / 11.0


def _binary_ap_voc12(s: np.ndarray, pos: np.ndarray) -> float:
    """Area under the monotone precision envelope (VOC2010+ devkit) of one class; NaN without positives."""
    return _area_under(s, pos, envelope=True)


def average_precision(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class non-interpolated average precision, shape ``[C]``.

    For each class, over its non-ignored entries: AP = Σ_n (R_n − R_{n−1}) · P_n, where n
    runs over the distinct score values in decreasing order (tied scores form a single
    threshold), P_n and R_n are the precision and recall when every entry scoring
    >= that value is predicted positive, and R_0 = 0. This is the definition of
    ``sklearn.metrics.average_precision_score`` and torchmetrics' ``AveragePrecision``.
    A class with no positive entry gets NaN.
    """
    s, y = check_inputs(scores, labels)
    return np.array([_binary_ap(*class_entries(s, y, c)) for c in range(s.shape[1])])


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean of :func:`average_precision` over the classes with at least one positive.

    NaN if no class has a positive.
    """
    return mean_or_nan(average_precision(scores, labels))


def average_precision_voc07(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class VOC2007 11-point interpolated average precision, shape ``[C]``.

    For each class, over its non-ignored entries: AP = (1/11) Σ_{r ∈ {0, 0.1, …, 1.0}}
    max{P_n : R_n >= r} (0 when no point reaches recall r), with the precision/recall
    points (P_n, R_n) taken at the distinct score thresholds as in
    :func:`average_precision` (tied scores form one point). ``R_n >= r`` is compared
    exactly (a recall of exactly 3/10 reaches r = 0.3). A class with no positive gets NaN.
    """
    s, y = check_inputs(scores, labels)
    return np.array([_binary_ap_voc07(*class_entries(s, y, c)) for c in range(s.shape[1])])


def map_voc07(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean of :func:`average_precision_voc07` over classes with a positive; NaN if none has."""
    return mean_or_nan(average_precision_voc07(scores, labels))


def average_precision_voc12(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class VOC2010+ average precision (the devkit's ``VOCap``), shape ``[C]``.

    For each class, over its non-ignored entries, with the precision/recall points (P_n, R_n)
    of :func:`average_precision` (distinct score thresholds in decreasing order, tied scores
    one point, R_0 = 0): the precision is first made monotone, P̂_n = max_{m >= n} P_m (the
    envelope), and AP = Σ_n (R_n − R_{n−1}) · P̂_n, the area under that envelope. Since
    P̂_n >= P_n this is never below the non-interpolated AP. The official devkit ranks the
    entries one by one, so where scores tie its value depends on their order in the list; here
    tied scores form one threshold and the value does not. A class with no positive gets NaN.
    """
    s, y = check_inputs(scores, labels)
    return np.array([_binary_ap_voc12(*class_entries(s, y, c)) for c in range(s.shape[1])])


def map_voc12(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean of :func:`average_precision_voc12` over classes with a positive; NaN if none has."""
    return mean_or_nan(average_precision_voc12(scores, labels))


@dataclass(frozen=True)
class APDefinition:
    """One of the three VOC average-precision definitions: the keys its mean and per-class values
    have in :func:`evaluate`'s dict, and how tables name it."""

    name: str
    metric: str
    """The mean's key in :func:`evaluate`'s dict, e.g. ``"map_voc07"``."""
    per_class: str
    """The per-class value's key under ``per_class[<class>]``, e.g. ``"ap_voc07"``."""
    label: str
    """A column header: ``mAP`` with the definition named."""
    description: str


AP_DEFINITIONS: dict[str, APDefinition] = {
    "sklearn": APDefinition(
        "sklearn", "mAP", "ap", "mAP (non-interp.)",
        "non-interpolated AP, as scikit-learn's average_precision_score (mean_average_precision)",
    ),
    "voc07": APDefinition(
        "voc07", "map_voc07", "ap_voc07", "mAP (VOC07 11-pt)",
        "VOC2007 devkit 11-point interpolated AP (map_voc07)",
    ),
    "voc12": APDefinition(
        "voc12", "map_voc12", "ap_voc12", "mAP (VOC2010+)",
        "VOC2010+ devkit AP, the area under the monotone precision envelope (map_voc12)",
    ),
}
"""The AP definitions by the name ``--ap`` takes."""


# --------------------------------------------------------------------------- tail accuracy


@dataclass(frozen=True, eq=False)
class TailCurve:
    """Tail accuracy over a grid of thresholds (see :func:`tail_accuracy_curve`).

    ``thresholds`` [K]; ``mean`` [K], the mean over classes at each threshold (NaN where
    no class is defined); ``per_class`` [C, K] (NaN where undefined); ``per_class_value``
    [C], each class's own tail accuracy; ``value``, the headline tail accuracy.
    """

    thresholds: np.ndarray
    mean: np.ndarray
    per_class: np.ndarray
    per_class_value: np.ndarray
    value: float


def _tail_counts(s: np.ndarray, pos: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per threshold t: (number of positives scoring > t, number of entries scoring > t)."""
    above = s[:, None] > thresholds[None, :]
    return (above & pos[:, None]).sum(axis=0), above.sum(axis=0)


def _empty_tail_curve(n_classes: int) -> TailCurve:
    """An all-undefined curve: no thresholds, NaN everywhere."""
    return TailCurve(
        thresholds=np.empty(0),
        mean=np.empty(0),
        per_class=np.empty((n_classes, 0)),
        per_class_value=np.full(n_classes, math.nan),
        value=math.nan,
    )


def _tail_handout(s: np.ndarray, y: np.ndarray, num_thresholds: int) -> TailCurve:
    """Tail accuracy under the course handout's convention."""
    n_classes = s.shape[1]
    kept = s[y != IGNORED]
    top = float(kept.max()) if kept.size else math.nan
    if not top > 0.5:
        logger.debug("tail accuracy undefined: highest non-ignored score %s <= 0.5", top)
        return _empty_tail_curve(n_classes)
    thresholds = 0.5 + np.arange(num_thresholds) * (top - 0.5) / num_thresholds
    per_class = np.full((n_classes, num_thresholds), math.nan)
    for c in range(n_classes):
        hits, counts = _tail_counts(*class_entries(s, y, c), thresholds)
        np.divide(hits, counts, out=per_class[c], where=counts > 0)
    mean = np.array([mean_or_nan(per_class[:, k]) for k in range(num_thresholds)])
    per_class_value = np.array([mean_or_nan(row) for row in per_class])
    return TailCurve(thresholds, mean, per_class, per_class_value, mean_or_nan(mean))


def _tail_course(s: np.ndarray, y: np.ndarray, num_thresholds: int) -> TailCurve:
    """Tail accuracy as the course project's code computes it."""
    n_classes = s.shape[1]
    first, _ = class_entries(s, y, 0)
    if first.size == 0:
        logger.warning("course tail accuracy undefined: every entry of the first class is ignored")
        return _empty_tail_curve(n_classes)
    thresholds = np.linspace(0.0, float(first.max()), num_thresholds)[:-1]
    per_class = np.empty((n_classes, thresholds.size))
    for c in range(n_classes):
        hits, counts = _tail_counts(*class_entries(s, y, c), thresholds)
        per_class[c] = hits / (counts + _COURSE_EPS)
    per_class_value = per_class[:, -1].copy()
    return TailCurve(thresholds, per_class.mean(axis=0), per_class, per_class_value, float(per_class_value.mean()))


def tail_accuracy_curve(
    scores: np.ndarray,
    labels: np.ndarray,
    convention: str = "handout",
    num_thresholds: int = 20,
) -> TailCurve:
    """Tail accuracy per class and threshold.

    Tailacc(t) = Σ_i 1[s_i > t]·1[y_i = 1] / Σ_i 1[s_i > t], per class over its
    non-ignored entries, defined only where at least one entry scores above t.

    ``convention="handout"``: thresholds t_k = 0.5 + k·(M − 0.5)/K for k = 0…K−1
    (K = ``num_thresholds``), M the highest score among all non-ignored entries of all
    classes; if M <= 0.5 everything is undefined (no thresholds, NaN values). ``mean`` at
    t_k is the mean over the classes defined there; ``value`` is the mean of ``mean``
    over the thresholds where it is defined; a class's own value is the mean of its
    defined points (NaN if none).

    ``convention="course"`` (the original course project's code; formerly ``"seed"``, still
    accepted with a DeprecationWarning): thresholds
    ``np.linspace(0, end, K)[:-1]`` with ``end`` the highest non-ignored score of the
    first class (column 0); Tailacc(t) = Σ 1[s>t]·1[y=1] / (Σ 1[s>t] + 1e-5), always
    defined; a class's own value is its value at the last threshold; ``value`` is the
    mean of the classes' own values; ``mean`` is the mean over classes per threshold.
    """
    s, y = check_inputs(scores, labels)
    convention = _check_convention(convention)
    if int(num_thresholds) != num_thresholds or num_thresholds < 2:
        raise ValueError(f"num_thresholds must be an integer >= 2, got {num_thresholds!r}")
    if convention == "course":
        return _tail_course(s, y, int(num_thresholds))
    return _tail_handout(s, y, int(num_thresholds))


def _check_convention(convention: str) -> str:
    """``convention``, with a deprecated name replaced by its new one (and a DeprecationWarning);
    ValueError for an unknown name, listing the valid ones."""
    if convention in _DEPRECATED_CONVENTIONS:
        new = _DEPRECATED_CONVENTIONS[convention]
        warnings.warn(
            f"tail-accuracy convention {convention!r} is deprecated and will be removed in the next release; "
            f"use {new!r} (the same computation)",
            DeprecationWarning,
            stacklevel=3,
        )
        return new
    if convention not in TAIL_CONVENTIONS:
        raise ValueError(f"unknown tail-accuracy convention {convention!r}; expected one of {TAIL_CONVENTIONS}")
    return convention


def tail_accuracy(scores: np.ndarray, labels: np.ndarray, convention: str = "handout") -> float:
    """The headline tail accuracy, ``tail_accuracy_curve(...).value`` (NaN when undefined)."""
    return tail_accuracy_curve(scores, labels, convention=convention).value


# --------------------------------------------------------------------------- precision / recall


def _safe_ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """num / den element-wise, 0 where den is 0."""
    num_a = np.asarray(num, dtype=np.float64)
    den_a = np.asarray(den, dtype=np.float64)
    return np.divide(num_a, den_a, out=np.zeros(np.broadcast(num_a, den_a).shape), where=den_a != 0)


def _f1(p: float, r: float) -> float:
    """Harmonic mean 2pr/(p+r); 0 if both are 0."""
    return 2.0 * p * r / (p + r) if p + r > 0 else 0.0


def _confusion_counts(
    scores: np.ndarray, labels: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class TP, FP, FN over non-ignored entries, predicting positive where score > threshold."""
    s, y = check_inputs(scores, labels)
    t = check_threshold(threshold)
    pred = s > t
    keep = y != IGNORED
    pos = y == POSITIVE
    tp = (pred & pos & keep).sum(axis=0)
    fp = (pred & ~pos & keep).sum(axis=0)
    fn = (~pred & pos & keep).sum(axis=0)
    return tp, fp, fn


def per_class_precision_recall(
    scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision TP/(TP+FP) and recall TP/(TP+FN), each shape ``[C]``.

    A prediction is positive where score > threshold; ignored entries are left out;
    a ratio whose denominator is 0 is 0.
    """
    tp, fp, fn = _confusion_counts(scores, labels, threshold)
    return _safe_ratio(tp, tp + fp), _safe_ratio(tp, tp + fn)


def multilabel_prf(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Per-class-averaged and overall precision, recall and F1 (CP, CR, CF1, OP, OR, OF1).

    Predicted positive = score > threshold, over non-ignored entries. CP and CR are the
    means over all C classes of :func:`per_class_precision_recall`;
    CF1 = 2·CP·CR/(CP+CR) (0 if both are 0). OP = ΣTP/(ΣTP+ΣFP) and OR = ΣTP/(ΣTP+ΣFN)
    with counts summed over classes (0 where the denominator is 0); OF1 = 2·OP·OR/(OP+OR).
    """
    precision, recall = per_class_precision_recall(scores, labels, threshold)
    tp, fp, fn = (int(x.sum()) for x in _confusion_counts(scores, labels, threshold))
    cp, cr = float(precision.mean()), float(recall.mean())
    op, or_ = float(_safe_ratio(tp, tp + fp)), float(_safe_ratio(tp, tp + fn))
    return {"CP": cp, "CR": cr, "CF1": _f1(cp, cr), "OP": op, "OR": or_, "OF1": _f1(op, or_)}


# --------------------------------------------------------------------------- report


def _json_float(x: float) -> float | None:
    """A plain Python float, or None for NaN."""
    x = float(x)
    return None if math.isnan(x) else x


def evaluate(
    scores: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str] = VOC_CLASSES,
    tail_convention: str = "handout",
) -> dict[str, Any]:
    """Every metric of this module in one JSON-serialisable dict (NaN becomes None).

    Keys: accuracy, mAP (non-interpolated, as sklearn), map_voc07 (11-point), map_voc12
    (VOC2010+ envelope), tail_accuracy, CP, CR, CF1, OP, OR, OF1 (threshold 0.5), n_images,
    tail_curve {"thresholds", "values"} (the mean tail-accuracy curve), per_class {name: {ap,
    ap_voc07, ap_voc12, tail_accuracy, precision, recall, n_positive, n_ignored}} and
    classes_without_positives, the names of the classes left out of the three mAPs (also
    logged as a warning).
    """
    s, y = check_inputs(scores, labels)
    names = list(class_names)
    if len(names) != s.shape[1]:
        raise ValueError(f"class_names has {len(names)} names but scores have {s.shape[1]} columns")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {names}")
    ap = average_precision(s, y)
    ap07 = average_precision_voc07(s, y)
    ap12 = average_precision_voc12(s, y)
    tail = tail_accuracy_curve(s, y, convention=tail_convention)
    precision, recall = per_class_precision_recall(s, y)
    missing = [name for name, a in zip(names, ap, strict=False) if math.isnan(a)]
    if missing:
        logger.warning("classes without positives, left out of mAP: %s", ", ".join(missing))
    report: dict[str, Any] = {
        "accuracy": _json_float(accuracy(s, y)),
        "mAP": _json_float(mean_or_nan(ap)),
        "map_voc07": _json_float(mean_or_nan(ap07)),
        "map_voc12": _json_float(mean_or_nan(ap12)),
        "tail_accuracy": _json_float(tail.value),
    }
    report.update({k: _json_float(v) for k, v in multilabel_prf(s, y).items()})
    report["n_images"] = int(s.shape[0])
    report["tail_curve"] = {
        "thresholds": [float(t) for t in tail.thresholds],
        "values": [_json_float(v) for v in tail.mean],
    }
    report["per_class"] = {
        name: {
            "ap": _json_float(ap[c]),
            "ap_voc07": _json_float(ap07[c]),
            "ap_voc12": _json_float(ap12[c]),
            "tail_accuracy": _json_float(tail.per_class_value[c]),
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "n_positive": int((y[:, c] == POSITIVE).sum()),
            "n_ignored": int((y[:, c] == IGNORED).sum()),
        }
        for c, name in enumerate(names)
    }
    report["classes_without_positives"] = missing
    return report
