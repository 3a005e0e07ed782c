"""Bootstrap resampling of mAP and accuracy, checked against sklearn on explicitly resampled data
and against hand-computed cases."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from voc.bootstrap import (
    Interval,
    bootstrap_accuracy,
    bootstrap_average_precision,
    bootstrap_map,
    percentile_interval,
    prob_not_better,
    resample_counts,
)
from voc.metrics import average_precision, average_precision_voc07, average_precision_voc12


def _data(n: int = 60, c: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < 0.3).astype(np.int64)
    labels[rng.random((n, c)) < 0.1] = -1
    # rounded so that many scores tie, within and across images
    scores = np.round(np.clip(0.4 * labels + 0.6 * rng.random((n, c)), 0, 1), 1)
    return scores, labels


def _sklearn_map_of_resample(
    scores: np.ndarray, labels: np.ndarray, counts_row: np.ndarray
) -> tuple[list[float], float]:
    """The independent reference: build the resampled set, then sklearn AP per class."""
    idx = np.repeat(np.arange(len(scores)), counts_row)
    s, y = scores[idx], labels[idx]
    aps = []
    for c in range(s.shape[1]):
        keep = y[:, c] != -1
        pos = y[keep, c] == 1
        aps.append(float(average_precision_score(pos, s[keep, c])) if pos.any() else math.nan)
    defined = [a for a in aps if not math.isnan(a)]
    return aps, sum(defined) / len(defined)


def test_resample_counts_are_draws_with_replacement_and_seeded() -> None:
    counts = resample_counts(50, 200, seed=3)
    assert counts.shape == (200, 50)
    assert (counts.sum(axis=1) == 50).all()
    assert (counts >= 0).all()
    np.testing.assert_array_equal(counts, resample_counts(50, 200, seed=3))
    assert not np.array_equal(counts, resample_counts(50, 200, seed=4))
    # about 1 - 1/e of the images appear in a resample
    assert 0.55 < (counts > 0).mean() < 0.70


def test_resampled_ap_and_map_equal_sklearn_on_the_resampled_set() -> None:
    scores, labels = _data()
    counts = resample_counts(len(scores), 25, seed=1)
    ap = bootstrap_average_precision(scores, labels, counts)
    maps = bootstrap_map(scores, labels, counts)
    for b in range(len(counts)):
        ref_ap, ref_map = _sklearn_map_of_resample(scores, labels, counts[b])
        np.testing.assert_allclose(ap[b], ref_ap, rtol=0, atol=1e-12, equal_nan=True)
        assert maps[b] == pytest.approx(ref_map, abs=1e-12)


@pytest.mark.parametrize(
    ("definition", "reference"),
    [("voc07", average_precision_voc07), ("voc12", average_precision_voc12), ("sklearn", average_precision)],
)
def test_resampled_ap_of_each_definition_equals_the_metric_on_the_resampled_set(
    definition: str, reference: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> None:
    scores, labels = _data(n=80, c=5, seed=4)
    counts = resample_counts(len(scores), 30, seed=2)
    ap = bootstrap_average_precision(scores, labels, counts, definition)
    maps = bootstrap_map(scores, labels, counts, definition)
    for b in range(len(counts)):
        idx = np.repeat(np.arange(len(scores)), counts[b])
        expected = reference(scores[idx], labels[idx])
        np.testing.assert_allclose(ap[b], expected, rtol=0, atol=1e-12, equal_nan=True)
        assert maps[b] == pytest.approx(np.nanmean(expected), abs=1e-12)


def test_hand_computed_resample_under_the_interpolated_definitions() -> None:
    # one class; a (pos, 0.9), b (neg, 0.8), c (pos, 0.3), d (pos, 0.2); the resample draws a, b, b, c, d:
    # points (R, P) = (1/3, 1), (1/3, 1/3), (2/3, 2/4), (1, 3/5)
    scores = np.array([[0.9], [0.8], [0.3], [0.2]])
    labels = np.array([[1], [0], [1], [1]])
    counts = np.array([[1, 2, 1, 1]])
    # envelope: 1 up to R = 1/3, then max(2/4, 3/5) = 3/5 for the rest: 1/3 * 1 + 2/3 * 3/5 = 0.7333...
    assert bootstrap_map(scores, labels, counts, "voc12")[0] == pytest.approx(1 / 3 + 2 / 3 * 3 / 5)
    # 11-point: r = 0, .1, .2, .3 -> 1 (4 points); r = .4 ... 1.0 -> 3/5 (7 points)
    assert bootstrap_map(scores, labels, counts, "voc07")[0] == pytest.approx((4 * 1 + 7 * 0.6) / 11)
    with pytest.raises(ValueError, match="unknown AP definition 'voc2010'"):
        bootstrap_map(scores, labels, counts, "voc2010")


def test_all_ones_counts_give_the_plain_metric() -> None:
    scores, labels = _data(seed=2)
    ones = np.ones((1, len(scores)), dtype=np.int32)
    _, ref_map = _sklearn_map_of_resample(scores, labels, ones[0])
    assert bootstrap_map(scores, labels, ones)[0] == pytest.approx(ref_map, abs=1e-12)
    keep = labels != -1
    ref_acc = ((scores > 0.5) == (labels == 1))[keep].mean()
    assert bootstrap_accuracy(scores, labels, ones)[0] == pytest.approx(ref_acc, abs=1e-12)


def test_hand_computed_resample() -> None:
    # one class; images: a (pos, 0.9), b (neg, 0.8), c (pos, 0.3); resample draws a, b, b, c
    scores = np.array([[0.9], [0.8], [0.3]])
    labels = np.array([[1], [0], [1]])
    counts = np.array([[1, 2, 1]])
    # ranked: a (tp 1/1 seen) -> b, b (seen 3, tp 1) -> c (seen 4, tp 2); AP = 1/2 * 1 + 1/2 * 2/4 = 0.75
    assert bootstrap_map(scores, labels, counts)[0] == pytest.approx(0.75)
    # accuracy at 0.5: a right, b wrong (x2), c wrong -> 1/4
    assert bootstrap_accuracy(scores, labels, counts)[0] == pytest.approx(0.25)


def test_resample_without_a_positive_of_a_class_leaves_it_out() -> None:
    scores = np.array([[0.9, 0.2], [0.1, 0.8]])
    labels = np.array([[1, 0], [0, 1]])
    counts = np.array([[2, 0]])  # only the first image: class 1 has no positive
    ap = bootstrap_average_precision(scores, labels, counts)
    assert ap[0, 0] == 1.0 and math.isnan(ap[0, 1])
    assert bootstrap_map(scores, labels, counts)[0] == 1.0


def test_bad_counts_are_refused() -> None:
    scores, labels = _data()
    with pytest.raises(ValueError, match="shape"):
        bootstrap_map(scores, labels, np.ones((3, 5), dtype=np.int32))
    with pytest.raises(ValueError, match="at least one image"):
        resample_counts(0)


def test_percentile_interval_hand_computed() -> None:
    values = np.linspace(0.0, 1.0, 101)  # 0.00, 0.01, ..., 1.00
    interval = percentile_interval(values, 0.95)
    assert interval.low == pytest.approx(0.025) and interval.high == pytest.approx(0.975)
    assert interval.half_width == pytest.approx(0.475)
    assert math.isnan(percentile_interval(np.array([np.nan])).low)
    with pytest.raises(ValueError, match="level"):
        percentile_interval(values, 1.5)
    assert Interval(0.1, 0.3, 0.95).half_width == pytest.approx(0.1)


def test_paired_probability_hand_computed() -> None:
    model = np.array([0.1, 0.5, 0.3, 0.2])
    leader = np.array([0.2, 0.4, 0.3, 0.6])
    # below in resamples 0 and 3, above in 1, tied in 2: (2 + 0.5) / 4
    assert prob_not_better(model, leader) == pytest.approx(0.625)
    assert prob_not_better(leader, leader) == 0.5  # identical predictions cannot be told apart
    assert math.isnan(prob_not_better(np.array([np.nan]), np.array([0.1])))
