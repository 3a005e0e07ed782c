"""The three VOC AP definitions side by side: non-interpolated (sklearn), VOC07 11-point, VOC2010+ envelope."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from voc.metrics import (
    average_precision,
    average_precision_voc07,
    average_precision_voc12,
    evaluate,
    map_voc12,
)


def _devkit_vocap(scores: np.ndarray, positive: np.ndarray) -> float:
    """The VOC2010+ devkit's VOCevalcls + VOCap, transcribed line by line (entries ranked one by one)."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(positive[order])
    fp = np.cumsum(~positive[order])
    rec = tp / positive.sum()
    prec = tp / (fp + tp)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def test_envelope_lifts_precision_dips_hand_computed() -> None:
    # ranked: neg, pos, pos -> (P, R) = (0, 0), (1/2, 1/2), (2/3, 1)
    scores = np.array([[0.9], [0.8], [0.7]])
    labels = np.array([[0], [1], [1]])
    assert average_precision(scores, labels)[0] == pytest.approx(0.5 * 0.5 + 0.5 * (2 / 3))
    # envelope: max precision at recall >= r is 2/3 everywhere
    assert average_precision_voc12(scores, labels)[0] == pytest.approx(2 / 3)
    # 11 points: 2/3 at every r
    assert average_precision_voc07(scores, labels)[0] == pytest.approx(2 / 3)


def test_envelope_equals_step_ap_when_precision_only_falls() -> None:
    # pos, neg, pos, neg, pos: (P, R) = (1, 1/3), (2/3, 2/3), (3/5, 1) at the positives; no dip to lift
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5]])
    labels = np.array([[1], [0], [1], [0], [1]])
    expected = (1 + 2 / 3 + 3 / 5) / 3
    assert average_precision_voc12(scores, labels)[0] == pytest.approx(expected)
    assert average_precision(scores, labels)[0] == pytest.approx(expected)
    # 11-point: r=0..0.3 -> 1 (4 points), 0.4..0.6 -> 2/3 (3 points), 0.7..1 -> 3/5 (4 points)
    assert average_precision_voc07(scores, labels)[0] == pytest.approx((4 * 1 + 3 * (2 / 3) + 4 * 0.6) / 11)


def test_tied_scores_form_one_threshold() -> None:
    # two entries tie at 0.8, one positive and one negative: one point (1/2, 1/2) whatever their order
    scores = np.array([[0.8], [0.8], [0.3]])
    for labels in (np.array([[1], [0], [1]]), np.array([[0], [1], [1]])):
        # points: (1/2, 1/2), (2/3, 1); envelope 2/3 at both
        assert average_precision_voc12(scores, labels)[0] == pytest.approx(2 / 3)
    # the devkit ranks the tie by list order: positive first gives 1.0 at recall 1/2
    assert _devkit_vocap(scores[:, 0], np.array([True, False, True])) == pytest.approx(0.5 * 1 + 0.5 * (2 / 3))
    assert _devkit_vocap(scores[:, 0], np.array([False, True, True])) == pytest.approx(2 / 3)


def test_matches_the_devkit_without_ties_and_is_never_below_sklearn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(5, 200))
        scores = rng.permutation(n) / n  # distinct scores: the devkit's list order does not matter
        positive = rng.random(n) < rng.uniform(0.05, 0.6)
        if not positive.any():
            positive[0] = True
        labels = positive.astype(int)[:, None]
        ours = average_precision_voc12(scores[:, None], labels)[0]
        assert ours == pytest.approx(_devkit_vocap(scores, positive), abs=1e-12)
        assert ours >= average_precision_score(positive, scores) - 1e-12


def test_ignored_entries_and_classes_without_positives() -> None:
    scores = np.array([[0.9, 0.2], [0.8, 0.1], [0.7, 0.3]])
    labels = np.array([[-1, 0], [1, 0], [0, 0]])
    ap12 = average_precision_voc12(scores, labels)
    assert ap12[0] == pytest.approx(1.0)  # the ignored top entry has no effect
    assert np.isnan(ap12[1])
    assert map_voc12(scores, labels) == pytest.approx(1.0)


def test_evaluate_reports_all_three_definitions() -> None:
    scores = np.array([[0.9, 0.2], [0.8, 0.6], [0.7, 0.3]])
    labels = np.array([[0, 1], [1, 0], [1, 1]])
    report = evaluate(scores, labels, class_names=("a", "b"))
    assert report["map_voc12"] == pytest.approx(float(np.nanmean(average_precision_voc12(scores, labels))))
    assert report["per_class"]["a"]["ap_voc12"] == pytest.approx(2 / 3)  # neg, pos, pos: envelope 2/3
    assert report["per_class"]["b"]["ap_voc12"] == pytest.approx(average_precision_voc12(scores, labels)[1])
    assert list(report)[:4] == ["accuracy", "mAP", "map_voc07", "map_voc12"]
