"""Tests of voc.metrics: hand-computed cases plus sklearn / torchmetrics references."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from voc import metrics
from voc.constants import VOC_CLASSES

# --------------------------------------------------------------------------- helpers


def _random_case(seed: int, n: int = 60, c: int = 5, decimals: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    """Random scores (rounded, so with many ties) and labels with ~15% ignored entries.

    Every class keeps at least one positive and one negative among its non-ignored entries.
    """
    rng = np.random.default_rng(seed)
    scores = rng.random((n, c))
    if decimals is not None:
        scores = scores.round(decimals)
    labels = (rng.random((n, c)) < 0.4).astype(np.int64)
    labels[rng.random((n, c)) < 0.15] = -1
    labels[0, :] = 1
    labels[1, :] = 0
    return scores, labels


def _sklearn_ap(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class sklearn AP after dropping the ignored entries."""
    from sklearn.metrics import average_precision_score

    out = []
    for c in range(scores.shape[1]):
        keep = labels[:, c] != -1
        out.append(average_precision_score(labels[keep, c], scores[keep, c]))
    return np.array(out)


def _course_reference(scores: np.ndarray, labels: np.ndarray) -> tuple[list[list[float]], float]:
    """Plain-Python rewrite of the course project's tail-accuracy loop (ignored entries skipped)."""
    end = max(float(s) for s, y in zip(scores[:, 0], labels[:, 0], strict=False) if y != -1)
    curves = []
    for c in range(scores.shape[1]):
        vals = []
        for t in np.linspace(0, end, 20)[:-1]:
            num = 0
            den = 0
            for s, y in zip(scores[:, c], labels[:, c], strict=False):
                if y == -1:
                    continue
                if s > t:
                    den += 1
                    num += int(y == 1)
            vals.append(num / (den + 1e-5))
        curves.append(vals)
    return curves, sum(v[-1] for v in curves) / len(curves)


# --------------------------------------------------------------------------- accuracy


def test_accuracy_hand_case() -> None:
    scores = np.array([[0.9, 0.2], [0.4, 0.6], [0.5, 0.7]])
    labels = np.array([[1, 0], [1, -1], [0, 1]])
    # (0.9,1) right, (0.2,0) right, (0.4,1) wrong, (0.6,-1) ignored,
    # (0.5,0) right (0.5 is not > 0.5), (0.7,1) right  ->  4 / 5
    assert metrics.accuracy(scores, labels) == pytest.approx(0.8)
    # threshold 0.3: (0.4,1) now right, (0.5,0) now wrong -> still 4 / 5; 0.1: (0.2,0) also wrong -> 3/5
    assert metrics.accuracy(scores, labels, threshold=0.3) == pytest.approx(0.8)
    assert metrics.accuracy(scores, labels, threshold=0.1) == pytest.approx(0.6)


def test_accuracy_all_ignored_is_nan() -> None:
    assert math.isnan(metrics.accuracy(np.array([[0.3]]), np.array([[-1]])))


# --------------------------------------------------------------------------- average precision


def test_ap_ties_grouped_hand_case() -> None:
    # sorted: 0.9(+), {0.8(-), 0.8(+)}, 0.3(-); 2 positives
    # t=0.9: P=1/1, R=1/2 ; t=0.8: P=2/3, R=2/2 ; t=0.3: P=2/4, R=1
    # AP = 0.5*1 + 0.5*(2/3) + 0*0.5 = 5/6
    # (an ungrouped ranking with the tied positive first would give 1.0, tied negative first 5/6)
    scores = np.array([[0.9], [0.8], [0.8], [0.3]])
    labels = np.array([[1], [0], [1], [0]])
    for order in ([0, 1, 2, 3], [0, 2, 1, 3], [3, 2, 1, 0]):
        np.testing.assert_allclose(metrics.average_precision(scores[order], labels[order]), [5 / 6])


def test_ap_perfect_and_inverted() -> None:
    scores = np.array([[0.9], [0.8], [0.2], [0.1]])
    np.testing.assert_allclose(metrics.average_precision(scores, np.array([[1], [1], [0], [0]])), [1.0])
    # positives last: t=0.2 -> P=1/3, R=1/2 ; t=0.1 -> P=2/4, R=1 ; AP = 0.5/3 + 0.5*0.5 = 5/12
    np.testing.assert_allclose(metrics.average_precision(scores, np.array([[0], [0], [1], [1]])), [5 / 12])


def test_ap_ignored_entries_have_no_effect() -> None:
    scores, labels = _random_case(seed=1)
    base = metrics.average_precision(scores, labels)
    changed = scores.copy()
    ignored = labels == -1
    assert ignored.any()
    changed[ignored] = 1.0 - changed[ignored]
    np.testing.assert_allclose(metrics.average_precision(changed, labels), base)
    np.testing.assert_allclose(
        metrics.average_precision_voc07(changed, labels), metrics.average_precision_voc07(scores, labels)
    )
    assert metrics.accuracy(changed, labels) == metrics.accuracy(scores, labels)
    assert metrics.multilabel_prf(changed, labels) == metrics.multilabel_prf(scores, labels)
    for conv in metrics.TAIL_CONVENTIONS:
        a = metrics.tail_accuracy_curve(changed, labels, convention=conv)
        b = metrics.tail_accuracy_curve(scores, labels, convention=conv)
        np.testing.assert_allclose(a.thresholds, b.thresholds)
        np.testing.assert_allclose(a.per_class, b.per_class)
        assert a.value == pytest.approx(b.value)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("decimals", [1, 2, None])
def test_ap_matches_sklearn(seed: int, decimals: int | None) -> None:
    scores, labels = _random_case(seed, decimals=decimals)
    np.testing.assert_allclose(metrics.average_precision(scores, labels), _sklearn_ap(scores, labels), rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_ap_matches_torchmetrics(seed: int) -> None:
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.classification")
    scores, labels = _random_case(seed)
    metric = tm.MultilabelAveragePrecision(num_labels=scores.shape[1], average=None, thresholds=None, ignore_index=-1)
    expected = metric(torch.from_numpy(scores), torch.from_numpy(labels)).double().numpy()
    np.testing.assert_allclose(metrics.average_precision(scores, labels), expected, rtol=1e-5)


def test_class_without_positives() -> None:
    scores = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.6], [0.6, 0.1, 0.3]])
    labels = np.array([[1, 0, 0], [0, 1, -1], [1, 0, 0]])
    # class 0: both positives on top -> AP 1
    # class 1: 0.8(-), 0.7(+), 0.1(-) -> t=0.8 P=0 R=0 ; t=0.7 P=1/2 R=1 -> AP 1/2
    # class 2: no positive -> NaN, left out of the mean
    ap = metrics.average_precision(scores, labels)
    np.testing.assert_allclose(ap[:2], [1.0, 0.5])
    assert math.isnan(ap[2])
    assert metrics.mean_average_precision(scores, labels) == pytest.approx(0.75)
    assert math.isnan(metrics.average_precision_voc07(scores, labels)[2])
    # class 1, 11-point: recall >= r for every r is reached only at P=1/2 -> 0.5 ; mean (1 + 0.5)/2
    assert metrics.map_voc07(scores, labels) == pytest.approx(0.75)


def test_no_class_with_positives_gives_nan() -> None:
    scores = np.array([[0.2, 0.4], [0.9, 0.1]])
    labels = np.array([[0, -1], [0, 0]])
    assert math.isnan(metrics.mean_average_precision(scores, labels))
    assert math.isnan(metrics.map_voc07(scores, labels))


# --------------------------------------------------------------------------- VOC07 11-point AP


def test_ap_voc07_hand_case() -> None:
    scores = np.array([[0.9], [0.8], [0.7], [0.6]])
    labels = np.array([[1], [0], [1], [0]])
    # points: (R=.5, P=1), (R=.5, P=.5), (R=1, P=2/3), (R=1, P=.5)
    # r = 0, .1, .2, .3, .4, .5 -> max P = 1 ; r = .6 … 1.0 (5 values) -> max P = 2/3
    # AP11 = (6*1 + 5*2/3) / 11 = 28/33 ; non-interpolated AP = .5*1 + .5*2/3 = 5/6
    np.testing.assert_allclose(metrics.average_precision_voc07(scores, labels), [28 / 33])
    np.testing.assert_allclose(metrics.average_precision(scores, labels), [5 / 6])


def test_ap_voc07_exact_recall_boundary() -> None:
    # 10 positives: 3 on top, then 3 negatives, then 7 positives
    # R = .1 .2 .3 at P = 1 ; after that the precision rises 4/7 … 10/13, so for r >= .4 the max is 10/13.
    # r = 0, .1, .2, .3 reach P = 1 (recall exactly 3/10 counts as >= 0.3)
    # AP11 = (4*1 + 7*10/13) / 11 = 122/143
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1])[:, None]
    scores = np.linspace(0.95, 0.35, labels.shape[0])[:, None]
    np.testing.assert_allclose(metrics.average_precision_voc07(scores, labels), [122 / 143])


# --------------------------------------------------------------------------- precision / recall


def test_multilabel_prf_hand_case() -> None:
    scores = np.array(
        [
            [0.9, 0.7, 0.1],
            [0.8, 0.6, 0.2],
            [0.2, 0.4, 0.3],
            [0.1, 0.3, 0.95],
        ]
    )
    labels = np.array(
        [
            [1, 1, 0],
            [0, 1, 1],
            [1, 1, 0],
            [0, 0, -1],
        ]
    )
    # class 0: pred [1,1,0,0] vs [1,0,1,0] -> TP 1 FP 1 FN 1 -> P 1/2, R 1/2
    # class 1: pred [1,1,0,0] vs [1,1,1,0] -> TP 2 FP 0 FN 1 -> P 1,   R 2/3
    # class 2: pred [0,0,0,(1 ignored)] vs [0,1,0,-] -> TP 0 FP 0 FN 1 -> P 0 (no predicted positive), R 0
    precision, recall = metrics.per_class_precision_recall(scores, labels)
    np.testing.assert_allclose(precision, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(recall, [0.5, 2 / 3, 0.0])
    # CP = 1.5/3 = 1/2 ; CR = (1/2 + 2/3)/3 = 7/18 ; CF1 = 2*(1/2)*(7/18) / (1/2 + 7/18) = 7/16
    # sums: TP 3, FP 1, FN 3 -> OP 3/4, OR 1/2, OF1 = 2*(3/4)*(1/2)/(5/4) = 3/5
    prf = metrics.multilabel_prf(scores, labels)
    assert set(prf) == {"CP", "CR", "CF1", "OP", "OR", "OF1"}
    expected = {"CP": 0.5, "CR": 7 / 18, "CF1": 7 / 16, "OP": 0.75, "OR": 0.5, "OF1": 0.6}
    for key, value in expected.items():
        assert prf[key] == pytest.approx(value), key


def test_multilabel_prf_nothing_predicted_is_zero() -> None:
    prf = metrics.multilabel_prf(np.array([[0.1, 0.2]]), np.array([[1, 0]]))
    assert prf == {"CP": 0.0, "CR": 0.0, "CF1": 0.0, "OP": 0.0, "OR": 0.0, "OF1": 0.0}


# --------------------------------------------------------------------------- tail accuracy


def _tail_hand_case() -> tuple[np.ndarray, np.ndarray]:
    scores = np.array([[0.9, 0.55], [0.71, 0.3], [0.61, 0.1], [0.2, 0.95]])
    labels = np.array([[1, 0], [0, 1], [1, 0], [0, -1]])
    return scores, labels


def test_tail_handout_hand_case() -> None:
    scores, labels = _tail_hand_case()
    curve = metrics.tail_accuracy_curve(scores, labels)
    # M = 0.9 (the 0.95 is ignored) -> t_k = 0.5 + k*(0.9-0.5)/20 = 0.50, 0.52, …, 0.88
    np.testing.assert_allclose(curve.thresholds, 0.5 + 0.02 * np.arange(20))
    # class 0 (0.9+, 0.71-, 0.61+, 0.2-):
    #   k=0..5  (t <= .60): above {.9,.71,.61} -> 2/3
    #   k=6..10 (.62-.70):  above {.9,.71}     -> 1/2
    #   k=11..19 (>= .72):  above {.9}         -> 1
    c0 = np.array([2 / 3] * 6 + [1 / 2] * 5 + [1.0] * 9)
    # class 1 (0.55-, 0.3+, 0.1-): k=0..2 (t <= .54): above {.55} -> 0 ; k >= 3: undefined
    c1 = np.array([0.0] * 3 + [np.nan] * 17)
    np.testing.assert_allclose(curve.per_class, np.stack([c0, c1]))
    # mean curve: k=0..2 -> (2/3+0)/2 = 1/3 ; then class 0 alone
    mean = np.array([1 / 3] * 3 + [2 / 3] * 3 + [1 / 2] * 5 + [1.0] * 9)
    np.testing.assert_allclose(curve.mean, mean)
    # class values: (6*2/3 + 5/2 + 9)/20 = 15.5/20 ; 0
    np.testing.assert_allclose(curve.per_class_value, [0.775, 0.0])
    # value = (3*1/3 + 3*2/3 + 5*1/2 + 9*1)/20 = 14.5/20
    assert curve.value == pytest.approx(0.725)
    assert metrics.tail_accuracy(scores, labels) == pytest.approx(0.725)


def test_tail_handout_undefined_when_max_at_most_half() -> None:
    scores = np.array([[0.5, 0.2], [0.1, 0.4], [0.3, 0.9]])
    labels = np.array([[1, 0], [0, 1], [0, -1]])  # the 0.9 is ignored -> M = 0.5
    curve = metrics.tail_accuracy_curve(scores, labels)
    assert curve.thresholds.shape == (0,)
    assert curve.mean.shape == (0,)
    assert curve.per_class.shape == (2, 0)
    assert np.isnan(curve.per_class_value).all()
    assert math.isnan(curve.value)
    assert math.isnan(metrics.tail_accuracy(scores, labels))


def test_tail_course_hand_case() -> None:
    scores = np.array([[0.8, 0.9], [0.4, 0.7], [0.2, 0.3]])
    labels = np.array([[1, 0], [0, 1], [0, 1]])
    # end = max of class 0 = 0.8 ; thresholds linspace(0, 0.8, 20)[:-1], last = 18*0.8/19 ≈ 0.758
    # class 0 at last: above {0.8+} -> 1/(1+1e-5) ; class 1 at last: above {0.9-} -> 0/(1+1e-5)
    # value = (1/(1+1e-5) + 0)/2
    curve = metrics.tail_accuracy_curve(scores, labels, convention="course")
    np.testing.assert_allclose(curve.thresholds, np.linspace(0, 0.8, 20)[:-1])
    assert curve.thresholds.shape == (19,)
    np.testing.assert_allclose(curve.per_class_value, [1 / (1 + 1e-5), 0.0])
    assert curve.value == pytest.approx(0.5 / (1 + 1e-5), rel=1e-12)
    # at t = 0 every entry is above: class 0 -> 1/(3+1e-5), class 1 -> 2/(3+1e-5)
    np.testing.assert_allclose(curve.per_class[:, 0], [1 / (3 + 1e-5), 2 / (3 + 1e-5)])
    np.testing.assert_allclose(curve.mean, curve.per_class.mean(axis=0))


@pytest.mark.parametrize("seed", range(3))
def test_tail_course_matches_plain_loop(seed: int) -> None:
    scores, labels = _random_case(seed, n=40, c=4, decimals=2)
    curves, value = _course_reference(scores, labels)
    curve = metrics.tail_accuracy_curve(scores, labels, convention="course")
    np.testing.assert_allclose(curve.per_class, np.array(curves), rtol=1e-12)
    assert curve.value == pytest.approx(value, rel=1e-12)
    assert metrics.tail_accuracy(scores, labels, convention="course") == pytest.approx(value, rel=1e-12)


def test_tail_convention_seed_is_a_deprecated_name_of_course() -> None:
    scores, labels = _random_case(0, n=30, c=3, decimals=2)
    with pytest.warns(DeprecationWarning, match=r"convention 'seed' is deprecated .*use 'course'"):
        old = metrics.tail_accuracy_curve(scores, labels, convention="seed")
    new = metrics.tail_accuracy_curve(scores, labels, convention="course")
    np.testing.assert_array_equal(old.per_class, new.per_class)
    assert old.value == new.value
    with pytest.warns(DeprecationWarning):
        assert metrics.tail_accuracy(scores, labels, convention="seed") == new.value
    with pytest.warns(DeprecationWarning):
        report = metrics.evaluate(
            np.tile(scores, (1, 7))[:, :20], np.tile(labels, (1, 7))[:, :20], tail_convention="seed"
        )
    assert "seed" not in metrics.TAIL_CONVENTIONS and "course" in metrics.TAIL_CONVENTIONS
    assert report["tail_accuracy"] is not None


def test_tail_curve_is_frozen() -> None:
    curve = metrics.tail_accuracy_curve(*_tail_hand_case())
    with pytest.raises(AttributeError):
        curve.value = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------- evaluate


EVALUATE_KEYS = {
    "accuracy", "mAP", "map_voc07", "map_voc12", "tail_accuracy", "CP", "CR", "CF1", "OP", "OR", "OF1",
    "n_images", "tail_curve", "per_class", "classes_without_positives",
}  # fmt: skip
PER_CLASS_KEYS = {"ap", "ap_voc07", "ap_voc12", "tail_accuracy", "precision", "recall", "n_positive", "n_ignored"}


@pytest.mark.parametrize("convention", metrics.TAIL_CONVENTIONS)
def test_evaluate_json_and_keys(convention: str, caplog: pytest.LogCaptureFixture) -> None:
    scores, labels = _random_case(seed=3, n=30, c=len(VOC_CLASSES))
    labels[:, 4] = np.where(labels[:, 4] == 1, 0, labels[:, 4])  # bottle: no positive
    with caplog.at_level(logging.WARNING, logger="voc.metrics"):
        report = metrics.evaluate(scores, labels, tail_convention=convention)
    json.dumps(report, allow_nan=False)
    assert set(report) == EVALUATE_KEYS
    assert list(report["per_class"]) == list(VOC_CLASSES)
    assert all(set(v) == PER_CLASS_KEYS for v in report["per_class"].values())
    assert report["classes_without_positives"] == ["bottle"]
    assert "bottle" in caplog.text
    assert report["per_class"]["bottle"]["ap"] is None
    assert report["per_class"]["bottle"]["n_positive"] == 0
    assert report["per_class"]["aeroplane"]["n_ignored"] == int((labels[:, 0] == -1).sum())
    assert report["n_images"] == 30
    assert report["mAP"] == pytest.approx(metrics.mean_average_precision(scores, labels))
    assert report["map_voc07"] == pytest.approx(metrics.map_voc07(scores, labels))
    assert report["tail_accuracy"] == pytest.approx(metrics.tail_accuracy(scores, labels, convention=convention))
    assert report["accuracy"] == pytest.approx(metrics.accuracy(scores, labels))
    assert len(report["tail_curve"]["thresholds"]) == len(report["tail_curve"]["values"])
    for key, value in metrics.multilabel_prf(scores, labels).items():
        assert report[key] == pytest.approx(value)


def test_evaluate_undefined_tail_gives_none() -> None:
    scores = np.array([[0.2, 0.4], [0.1, 0.3]])
    labels = np.array([[1, 0], [0, 0]])
    report = metrics.evaluate(scores, labels, class_names=("a", "b"))
    json.dumps(report, allow_nan=False)
    assert report["tail_accuracy"] is None
    assert report["tail_curve"] == {"thresholds": [], "values": []}
    assert report["classes_without_positives"] == ["b"]
    assert report["per_class"]["b"]["tail_accuracy"] is None


# --------------------------------------------------------------------------- validation


GOOD_S = np.array([[0.2, 0.8], [0.6, 0.4]])
GOOD_Y = np.array([[1, 0], [0, -1]])

BAD_INPUTS = [
    pytest.param(GOOD_S, GOOD_Y[:1], "same shape", id="shape-mismatch"),
    pytest.param(GOOD_S[0], GOOD_Y[0], "2-D", id="not-2d"),
    pytest.param(GOOD_S, np.array([[1, 2], [0, 0]]), "labels must only contain", id="label-2"),
    pytest.param(GOOD_S, np.array([[1.0, 0.5], [0.0, 0.0]]), "labels must only contain", id="label-half"),
    pytest.param(np.array([[0.2, np.nan], [0.6, 0.4]]), GOOD_Y, "finite", id="score-nan"),
    pytest.param(np.array([[0.2, np.inf], [0.6, 0.4]]), GOOD_Y, "finite", id="score-inf"),
    pytest.param(np.array([[0.2, 1.1], [0.6, 0.4]]), GOOD_Y, r"\[0, 1\]", id="score-above-1"),
    pytest.param(np.array([[0.2, -0.1], [0.6, 0.4]]), GOOD_Y, r"\[0, 1\]", id="score-below-0"),
]

PUBLIC_FUNCTIONS = [
    metrics.accuracy,
    metrics.average_precision,
    metrics.mean_average_precision,
    metrics.average_precision_voc07,
    metrics.map_voc07,
    metrics.tail_accuracy_curve,
    metrics.tail_accuracy,
    metrics.multilabel_prf,
    metrics.per_class_precision_recall,
    lambda s, y: metrics.evaluate(s, y, class_names=("a", "b")),
]


@pytest.mark.parametrize("func", PUBLIC_FUNCTIONS)
@pytest.mark.parametrize(("scores", "labels", "match"), BAD_INPUTS)
def test_bad_inputs_raise(func: Callable[..., Any], scores: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        func(scores, labels)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: metrics.evaluate(GOOD_S, GOOD_Y), "class_names", id="default-names-vs-2-classes"),
        pytest.param(lambda: metrics.evaluate(GOOD_S, GOOD_Y, class_names=("a",)), "class_names", id="too-few-names"),
        pytest.param(lambda: metrics.evaluate(GOOD_S, GOOD_Y, class_names=("a", "a")), "unique", id="duplicate-names"),
        pytest.param(lambda: metrics.tail_accuracy(GOOD_S, GOOD_Y, convention="nope"), "convention", id="convention"),
        pytest.param(lambda: metrics.tail_accuracy_curve(GOOD_S, GOOD_Y, num_thresholds=1), "num_thresholds", id="k"),
        pytest.param(lambda: metrics.accuracy(GOOD_S, GOOD_Y, threshold=float("nan")), "threshold", id="threshold"),
    ],
)
def test_bad_arguments_raise(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
