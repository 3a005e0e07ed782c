"""Low-shot sampling and runs (bench.frozen.lowshot): k positives and 19·k negatives per class from the
training labels only, seeded and reproducible; every (k, sample) scored and summarised."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import LinearSVC

import bench.frozen.lowshot
from bench.frozen.lowshot import class_names, lowshot_targets, run_lowshot, shortfall
from bench.frozen.probe import to_unit_interval
from bench.frozen.recipes import SVM_RECIPE
from voc.metrics import evaluate


def _labels(seed: int, n: int = 400, classes: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, classes)) < 0.2).astype(np.int8)
    labels[rng.random((n, classes)) < 0.05] = -1  # ignored (difficult-only) entries
    return labels


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_a_sample_has_k_positives_and_19k_negatives_per_class_from_the_labels(k: int) -> None:
    labels = _labels(0)
    targets = lowshot_targets(labels, k, sample=1, seed=0)
    assert targets.shape == labels.shape and targets.dtype == np.int8
    for c in range(labels.shape[1]):
        chosen_pos, chosen_neg = targets[:, c] == 1, targets[:, c] == 0
        assert chosen_pos.sum() == k and chosen_neg.sum() == 19 * k
        assert (labels[chosen_pos, c] == 1).all() and (labels[chosen_neg, c] == 0).all()  # never an ignored one
        assert set(np.unique(targets[:, c])) <= {-1, 0, 1}


def test_samples_are_reproducible_and_differ_by_seed_sample_and_k() -> None:
    labels = _labels(1)
    a = lowshot_targets(labels, 4, sample=2, seed=7)
    assert np.array_equal(a, lowshot_targets(labels, 4, sample=2, seed=7))
    assert not np.array_equal(a, lowshot_targets(labels, 4, sample=2, seed=8))
    assert not np.array_equal(a, lowshot_targets(labels, 4, sample=3, seed=7))
    # a class's draw has its own generator: the same whatever the other classes are
    assert np.array_equal(lowshot_targets(labels[:, :2], 4, sample=2, seed=7), a[:, :2])
    # ... and it is numpy's default_rng([seed, sample, k, class]), written out
    rng = np.random.default_rng([7, 2, 4, 1])
    positives = rng.choice(np.flatnonzero(labels[:, 1] == 1), size=4, replace=False)
    negatives = rng.choice(np.flatnonzero(labels[:, 1] == 0), size=76, replace=False)
    assert set(np.flatnonzero(a[:, 1] == 1)) == set(positives)
    assert set(np.flatnonzero(a[:, 1] == 0)) == set(negatives)


def test_a_k_some_class_cannot_serve_is_refused_naming_the_class() -> None:
    labels = np.zeros((100, 20), dtype=np.int8)
    labels[:10] = 1
    labels[:3, 5] = 0  # class 5 (bus) has 7 positives, 93 negatives; every other class 10 and 90
    assert shortfall(labels, 7, 19) is not None  # 7 * 19 = 133 negatives are more than 90
    assert shortfall(labels, 2, 19) is None
    reason = shortfall(labels, 8, 1)
    assert reason is not None and "bus (7 positives, 93 negatives)" in reason and "aeroplane" not in reason
    with pytest.raises(ValueError, match="cannot sample k=8"):
        lowshot_targets(labels, 8, 1, 0, negatives_per_positive=1)


def _separable(seed: int, n: int, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, classes)) < 0.25).astype(np.int8)
    x = rng.random((n, 8)) + 0.1
    x[:, :classes] += 0.8 * labels
    return x.astype(np.float32), labels


def test_run_fits_each_sample_on_train_labels_only_and_summarises(monkeypatch: pytest.MonkeyPatch) -> None:
    train_x, train_labels = _separable(0, 300)
    eval_x, eval_labels = _separable(1, 80)
    given = []
    real = bench.frozen.lowshot.lowshot_targets

    def spy(labels: np.ndarray, *args, **kwargs) -> np.ndarray:  # noqa: ANN002, ANN003
        given.append(labels)
        return real(labels, *args, **kwargs)

    monkeypatch.setattr(bench.frozen.lowshot, "lowshot_targets", spy)
    result = run_lowshot(train_x, train_labels, eval_x, eval_labels, recipe=SVM_RECIPE, k_values=(1, 2, 64),
                         samples=3, negatives_per_positive=19, cost=0.5, seed=4, n_jobs=1)
    assert all(labels is train_labels for labels in given) and len(given) == 6  # the eval labels are never sampled
    assert [(r["k"], r["sample"]) for r in result.runs] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert [s["k"] for s in result.skipped] == [64]  # fewer than 64 positives per class
    summary = {s["k"]: s for s in result.summary()}
    for k in (1, 2):
        values = np.array([r["map_voc12"] for r in result.runs if r["k"] == k])
        assert summary[k]["map_voc12"] == {"mean": values.mean(), "min": values.min(), "max": values.max(),
                                           "std": values.std()}

    # the record's run is sample 1 at the largest k that ran, a plain LinearSVC on the sampled rows
    assert (result.reported_k, result.reported_sample) == (2, 1)
    targets = real(train_labels, 2, 1, 4, 19)
    norm = np.linalg.norm(train_x.astype(np.float64), axis=1, keepdims=True) + 1e-5
    x = train_x.astype(np.float64) / norm
    ex = eval_x.astype(np.float64) / (np.linalg.norm(eval_x.astype(np.float64), axis=1, keepdims=True) + 1e-5)
    decision = []
    for c in range(3):
        rows = targets[:, c] != -1
        svm = LinearSVC(C=0.5, class_weight={1: 2, -1: 1}, dual="auto", max_iter=2000, tol=1e-4, random_state=4)
        decision.append(svm.fit(x[rows], np.where(targets[rows, c] == 1, 1, -1)).decision_function(ex))
    expected = to_unit_interval(np.stack(decision, axis=1))
    np.testing.assert_allclose(result.scores, expected, rtol=0, atol=1e-9)
    assert result.metrics == evaluate(result.scores, eval_labels.astype(np.int64), class_names(3))
    assert result.runs[3]["mAP"] == result.metrics["mAP"]
    section = result.section()
    assert section["k_values_run"] == [1, 2] and section["C"] == 0.5 and len(section["runs"]) == 6


def test_no_feasible_k_is_an_error() -> None:
    train_x, train_labels = _separable(0, 30)
    eval_x, eval_labels = _separable(1, 10)
    with pytest.raises(ValueError, match="no low-shot k value"):
        run_lowshot(train_x, train_labels, eval_x, eval_labels, recipe=SVM_RECIPE, k_values=(4,), samples=1,
                    negatives_per_positive=19, cost=1.0, seed=0, n_jobs=1)
