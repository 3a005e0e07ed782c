"""The linear probes (bench.frozen.probe) against plain scikit-learn pipelines written here, on the same
features, grid and folds; the score map; classes too small for cross-validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from bench.frozen.probe import fit_probe, merged_classes, to_unit_interval
from bench.frozen.recipes import LOGREG_RECIPE, SVM_RECIPE, VISSL_VOC07_SVM_COSTS
from voc.metrics import average_precision, average_precision_voc07, average_precision_voc12


def _features(seed: int, n: int, d: int = 12, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """float32 features whose first ``classes`` dimensions carry each class's label, plus noise;
    labels 1 / 0 with some -1 (ignored) entries."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, classes)) < 0.35).astype(np.int64)
    labels[rng.random((n, classes)) < 0.08] = -1
    x = rng.normal(size=(n, d)) + 0.5
    x[:, :classes] += 1.2 * (labels == 1)
    return np.abs(x).astype(np.float32), labels  # non-negative, as pooled ReLU features are


def _reference(
    train_x: np.ndarray, train_labels: np.ndarray, eval_x: np.ndarray,
    make: Callable[[float], Any], costs: list[float], folds: int, seed: int, l2: bool,
) -> tuple[list[float], np.ndarray, list[list[float]]]:
    """Chosen C, eval decision values and mean CV AP per C, per class, by plain scikit-learn."""
    x, ex = train_x.astype(np.float64), eval_x.astype(np.float64)
    if l2:  # VISSL's normalisation, written out
        x = x / (np.sqrt((x**2).sum(axis=1, keepdims=True)) + 1e-5)
        ex = ex / (np.sqrt((ex**2).sum(axis=1, keepdims=True)) + 1e-5)
    chosen, decisions, cv = [], [], []
    for c in range(train_labels.shape[1]):
        y = np.where(train_labels[:, c] == 1, 1, -1)  # ignored entries are negatives, as VISSL trains
        split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        means = [cross_val_score(make(cost), x, y, cv=split, scoring="average_precision").mean() for cost in costs]
        best = costs[int(np.argmax(means))]
        chosen.append(best)
        decisions.append(make(best).fit(x, y).decision_function(ex))
        cv.append(means)
    return chosen, np.stack(decisions, axis=1), cv


def test_svm_probe_is_vissls_recipe_in_plain_sklearn() -> None:
    train_x, train_labels = _features(0, 90)
    eval_x, _ = _features(1, 40)
    seed = 3
    fit = fit_probe(train_x, train_labels, recipe=SVM_RECIPE, costs=VISSL_VOC07_SVM_COSTS, fixed_cost=1.0, seed=seed,
                    n_jobs=2)

    def svm(cost: float) -> LinearSVC:
        return LinearSVC(C=cost, class_weight={1: 2, -1: 1}, penalty="l2", loss="squared_hinge", dual="auto",
                         tol=1e-4, max_iter=2000, random_state=seed)

    chosen, decision, cv = _reference(train_x, train_labels, eval_x, svm, list(VISSL_VOC07_SVM_COSTS), 3, seed, True)
    assert [c.cost for c in fit.classes] == chosen
    assert [c.chosen_by for c in fit.classes] == ["cv"] * 3
    np.testing.assert_allclose([c.cv_ap for c in fit.classes], cv, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.decision(eval_x), decision, rtol=0, atol=1e-9)
    assert len(set(chosen)) > 1 or chosen[0] != VISSL_VOC07_SVM_COSTS[0]  # the grid mattered


def test_logreg_probe_is_standardised_logistic_regression_in_plain_sklearn() -> None:
    train_x, train_labels = _features(2, 100)
    eval_x, _ = _features(3, 30)
    costs = (1e-4, 1e-2, 1.0, 100.0)
    fit = fit_probe(train_x, train_labels, recipe=LOGREG_RECIPE, costs=costs, fixed_cost=1.0, seed=0, n_jobs=1)

    def logreg(cost: float):  # noqa: ANN202 - a scikit-learn Pipeline
        return make_pipeline(StandardScaler(), LogisticRegression(C=cost, tol=1e-4, max_iter=1000, random_state=0))

    chosen, decision, cv = _reference(train_x, train_labels, eval_x, logreg, list(costs), 5, 0, False)
    assert [c.cost for c in fit.classes] == chosen
    np.testing.assert_allclose([c.cv_ap for c in fit.classes], cv, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.decision(eval_x), decision, rtol=0, atol=1e-9)


def test_probe_section_records_grid_folds_and_choice() -> None:
    train_x, train_labels = _features(4, 60)
    fit = fit_probe(train_x, train_labels, recipe=SVM_RECIPE, costs=(0.1, 1.0), fixed_cost=1.0, seed=5, n_jobs=1)
    section = fit.section("trainval", class_names=["a", "b", "c"])
    assert section["grid"] == [0.1, 1.0]
    cv = section["cv"]
    assert (cv["n_splits"], cv["random_state"], cv["split"], cv["shuffle"]) == (3, 5, "trainval", True)
    assert section["chosen_C"] == {name: c.cost for name, c in zip("abc", fit.classes, strict=True)}
    assert section["cv_score"] == {name: max(c.cv_ap) for name, c in zip("abc", fit.classes, strict=True)}
    assert section["recipe"]["class_weight"] == {"1": 2.0, "-1": 1.0}


def test_classes_too_small_for_cross_validation() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((30, 5)).astype(np.float32)
    labels = np.zeros((30, 3), dtype=np.int64)
    labels[:2, 0] = 1  # two positives: 2-fold CV instead of 3
    labels[:1, 1] = 1  # one positive: no CV, the fixed C
    labels[:, 2] = -1  # no positive at all: not fitted, every score 0.5
    fit = fit_probe(x, labels, recipe=SVM_RECIPE, costs=(0.1, 1.0), fixed_cost=0.7, seed=0, n_jobs=1)
    a, b, c = fit.classes
    assert (a.chosen_by, a.folds) == ("cv", 2)
    assert (b.chosen_by, b.cost, b.folds, b.cv_ap) == ("fixed", 0.7, None, None)
    assert (c.chosen_by, c.cost, c.estimator) == ("not fitted", None, None)
    decision = fit.decision(x)
    assert (decision[:, 2] == 0).all() and (to_unit_interval(decision)[:, 2] == 0.5).all()


def test_score_map_keeps_every_ap_and_the_order() -> None:
    rng = np.random.default_rng(1)
    decision = np.concatenate([rng.normal(scale=3.0, size=(200, 2)), [[40.0, -40.0], [41.0, -41.0]]])
    labels = (rng.random((202, 2)) < 0.3).astype(np.int64)
    scores = to_unit_interval(decision)
    assert ((scores > 0) & (scores < 1)).all()
    assert to_unit_interval(np.zeros((1, 1)))[0, 0] == 0.5
    for c in range(2):  # strictly increasing: same order, no new ties (a float64 sigmoid ties 40 and 41 at 1.0)
        order = np.argsort(decision[:, c])
        assert (np.diff(scores[order, c]) > 0).all()
    assert 1 / (1 + np.exp(-40.0)) == 1 / (1 + np.exp(-41.0))
    assert merged_classes(decision, scores) == []
    reference = [average_precision_score(labels[:, c], decision[:, c]) for c in range(2)]
    np.testing.assert_allclose(average_precision(scores, labels), reference, rtol=0, atol=1e-12)
    # the envelope and 11-point APs depend on the order alone too: same on a shifted copy of the decision values
    shifted = to_unit_interval(decision / 7.0 - 1.0)
    for ap in (average_precision_voc12, average_precision_voc07):
        np.testing.assert_allclose(ap(scores, labels), ap(shifted, labels), rtol=0, atol=1e-12)
