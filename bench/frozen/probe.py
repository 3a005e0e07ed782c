"""Linear probes on frozen features: one binary scikit-learn classifier per class, fitted the same
way for every backbone (torch-free).

:func:`fit_probe` fits each class's classifier on the training split, its C chosen there by
stratified, shuffled, seeded k-fold cross-validation over a grid (the eval split is never seen);
:func:`fit_fixed` fits them with one fixed C on the entries a low-shot sample keeps. Classes are
fitted in parallel (joblib). The recipes (features, estimator, grid, folds) are
``bench.frozen.recipes.PROBE_RECIPES``.

Training targets: label 1 is the positive class; 0 and -1 (ignored) are negatives in
:func:`fit_probe`, as in VISSL's ``svm_trainer.py`` (``train_cls`` turns 0 into -1 and keeps its
ignore label -1, so difficult-only images are SVM negatives), while evaluation leaves -1 out.
:func:`fit_fixed` uses only the entries a sample marks 1 or 0 (VISSL's low-shot trainer drops -1).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from bench.frozen.recipes import ProbeRecipe
from voc.constants import POSITIVE, VOC_CLASSES

log = logging.getLogger(__name__)

L2_EPS = 1e-5
"""Added to each feature's L2 norm before dividing (VISSL ``SVMTrainer._normalize_features``)."""

SCORE_MAP = "0.5 + 0.5 * d / (1 + |d|) of the decision value d"
"""How decision values become scores in [0, 1]: strictly increasing (every AP, and the ranking, is
the decision function's) and 0.5 at d = 0 (accuracy at 0.5 is the classifier's own decision). Not
the sigmoid: in float64 it rounds every d above ~37 to exactly 1.0, which would tie them."""


def prepare_features(recipe: ProbeRecipe, features: np.ndarray) -> np.ndarray:
    """``features`` as float64, L2-normalised per image for an ``l2`` recipe (VISSL: ``x / (‖x‖ +
    1e-5)``); a ``standardise`` recipe standardises inside its estimator, fitted on training rows."""
    x = np.asarray(features, dtype=np.float64)
    if recipe.features == "l2":
        return x / (np.linalg.norm(x, axis=1) + L2_EPS)[:, np.newaxis]
    if recipe.features == "standardise":
        return x
    raise ValueError(f"unknown feature preparation {recipe.features!r} in probe recipe {recipe.name!r}")


def make_estimator(recipe: ProbeRecipe, cost: float, seed: int) -> Any:
    """The recipe's unfitted binary classifier with C = ``cost`` (targets -1 / 1)."""
    class_weight = None if recipe.class_weight is None else dict(recipe.class_weight)
    if recipe.estimator == "LinearSVC":
        return LinearSVC(
            C=cost, class_weight=class_weight, penalty="l2", loss="squared_hinge", dual=recipe.dual, tol=recipe.tol,
            max_iter=recipe.max_iter, intercept_scaling=1.0, random_state=seed,
        )
    if recipe.estimator == "LogisticRegression":
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(C=cost, tol=recipe.tol, max_iter=recipe.max_iter, class_weight=class_weight,
                               random_state=seed),
        )
    raise ValueError(f"unknown estimator {recipe.estimator!r} in probe recipe {recipe.name!r}")


def to_unit_interval(decision: np.ndarray) -> np.ndarray:
    """Decision values → scores in [0, 1] (:data:`SCORE_MAP`)."""
    d = np.asarray(decision, dtype=np.float64)
    return 0.5 + 0.5 * d / (1.0 + np.abs(d))


def merged_classes(decision: np.ndarray, scores: np.ndarray) -> list[int]:
    """Columns where the map to [0, 1] made distinct decision values equal (none for any sane
    decision values; a run logs it if it happens)."""
    return [
        c for c in range(decision.shape[1])
        if np.unique(decision[:, c]).size != np.unique(scores[:, c]).size
    ]


@dataclass
class ClassFit:
    """One class's probe: the fitted classifier (``None`` where the training rows lack a class)
    and how its C was chosen."""

    estimator: Any
    cost: float | None
    chosen_by: str
    """``cv`` (best mean CV AP), ``fixed`` (``fixed_cost``) or ``not fitted`` (no positive or no
    negative training entry: every score is 0.5)."""
    folds: int | None
    cv_ap: tuple[float, ...] | None
    """Mean CV average precision at each C of the grid (``cv`` only)."""
    n_positive: int
    n_negative: int
    not_converged_fits: int

    def decision(self, x: np.ndarray) -> np.ndarray:
        if self.estimator is None:
            return np.zeros(len(x))
        return np.asarray(self.estimator.decision_function(x), dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        chosen = None if self.cv_ap is None or self.cost is None else max(self.cv_ap)
        return {
            "C": self.cost,
            "chosen_by": self.chosen_by,
            "folds": self.folds,
            "cv_ap": chosen,
            "cv_ap_by_C": None if self.cv_ap is None else list(self.cv_ap),
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "not_converged_fits": self.not_converged_fits,
        }


def _count_convergence_warnings(caught: Sequence[warnings.WarningMessage]) -> int:
    """ConvergenceWarnings among ``caught``; every other warning is raised again."""
    count = 0
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            count += 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return count


def _cv_score(
    x: np.ndarray, y: np.ndarray, recipe: ProbeRecipe, cost: float, n_splits: int, seed: int
) -> tuple[float, int]:
    """Mean ``n_splits``-fold stratified (shuffled, seeded) CV average precision of C = ``cost`` on
    targets ``y`` (1 / -1), and how many of its fits did not converge."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        ap = float(cross_val_score(make_estimator(recipe, cost, seed), x, y, cv=cv, scoring="average_precision",
                                   error_score="raise").mean())
    return ap, _count_convergence_warnings(caught)


def _refit(x: np.ndarray, y: np.ndarray, recipe: ProbeRecipe, cost: float, seed: int) -> tuple[Any, int]:
    """The recipe's classifier with C = ``cost`` fitted on all rows, and whether it did not converge (0/1)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator = make_estimator(recipe, cost, seed).fit(x, y)
    return estimator, _count_convergence_warnings(caught)


def cv_splits(y: np.ndarray, folds: int) -> int:
    """Folds of a class's CV: ``min(folds, positives, negatives)`` (targets 1 / -1); below 2 there is
    no CV and the class gets the fixed C."""
    n_pos = int((y == 1).sum())
    return min(folds, n_pos, int(y.size) - n_pos)


def fit_classes(
    x: np.ndarray,
    targets: Sequence[np.ndarray],
    *,
    recipe: ProbeRecipe,
    costs: Sequence[float],
    folds: int,
    fixed_cost: float,
    seed: int,
    parallel: Parallel,
) -> list[ClassFit]:
    """Fit one classifier per column of ``targets`` (each 1 / -1 over the rows of ``x``, or a pair
    (rows, targets) of a subset): C by :func:`cv_splits`-fold CV over ``costs`` where that is at least 2
    (the best mean CV AP; ties go to the smallest C), else ``fixed_cost``; then refitted on all its
    rows. Every (class, C) CV and every refit is one job on ``parallel``'s workers, the large C first
    (the slow fits: the workers stay busy to the end)."""
    problems = [(x, t) if isinstance(t, np.ndarray) else (x[t[0]], t[1]) for t in targets]
    splits = [cv_splits(y, folds) for _, y in problems]
    cv_jobs = [(c, cost) for cost in sorted(costs, reverse=True) for c, (_, y) in enumerate(problems)
               if splits[c] >= 2 and (y == 1).any() and (y == -1).any()]
    scores = parallel(delayed(_cv_score)(problems[c][0], problems[c][1], recipe, cost, splits[c], seed)
                      for c, cost in cv_jobs)
    cv_ap: dict[int, dict[float, float]] = {}
    not_converged = [0] * len(problems)
    for (c, cost), (ap, bad) in zip(cv_jobs, scores, strict=True):
        cv_ap.setdefault(c, {})[cost] = ap
        not_converged[c] += bad
    chosen: dict[int, tuple[float, str]] = {}
    for c, (_, y) in enumerate(problems):
        if not ((y == 1).any() and (y == -1).any()):
            continue
        if c in cv_ap:
            by_cost = [cv_ap[c][float(cost)] for cost in costs]
            chosen[c] = (float(costs[int(np.argmax(by_cost))]), "cv")  # argmax: ties go to the smallest C
        else:
            chosen[c] = (float(fixed_cost), "fixed")
    refit_jobs = sorted(chosen, key=lambda c: -chosen[c][0])
    refits = parallel(delayed(_refit)(problems[c][0], problems[c][1], recipe, chosen[c][0], seed) for c in refit_jobs)
    fitted = dict(zip(refit_jobs, refits, strict=True))
    out = []
    for c, (_, y) in enumerate(problems):
        n_pos = int((y == 1).sum())
        n_neg = int(y.size - n_pos)
        if c not in chosen:
            out.append(ClassFit(None, None, "not fitted", None, None, n_pos, n_neg, 0))
            continue
        estimator, bad = fitted[c]
        cost, chosen_by = chosen[c]
        ap = tuple(cv_ap[c][float(k)] for k in costs) if chosen_by == "cv" else None
        out.append(ClassFit(estimator, cost, chosen_by, splits[c] if chosen_by == "cv" else None, ap, n_pos, n_neg,
                            not_converged[c] + bad))
    return out


@dataclass
class ProbeFit:
    """Every class's probe, fitted on prepared training features."""

    recipe: ProbeRecipe
    costs: tuple[float, ...]
    folds: int
    fixed_cost: float
    seed: int
    classes: list[ClassFit]

    def decision(self, eval_features: np.ndarray) -> np.ndarray:
        """Decision values ``[N, C]`` of raw (unprepared) features, e.g. the eval split's."""
        x = prepare_features(self.recipe, eval_features)
        return np.stack([fit.decision(x) for fit in self.classes], axis=1)

    def section(self, train_split: str, class_names: Sequence[str] = VOC_CLASSES) -> dict[str, Any]:
        """The record's ``probe`` section: recipe, grid, folds, the chosen C and CV AP per class."""
        per_class = {name: fit.summary() for name, fit in zip(class_names, self.classes, strict=True)}
        return {
            "name": self.recipe.name,
            "recipe": self.recipe.to_dict(),
            "source": self.recipe.source,
            "grid": list(self.costs),
            "cv": {
                "split": train_split,
                "kind": "StratifiedKFold",
                "n_splits": self.folds,
                "shuffle": True,
                "random_state": self.seed,
                "scoring": "average_precision (scikit-learn, non-interpolated)",
                "chosen": "the C with the highest mean CV AP; ties go to the smallest C",
                "fewer_entries": (
                    f"a class with fewer than {self.folds} positives or negatives uses that many folds; "
                    f"with fewer than 2, C = fixed_cost {self.fixed_cost:g}"
                ),
            },
            "train_targets": "label 1 positive; 0 and -1 (ignored) negative, as VISSL svm_trainer.train_cls",
            "score_map": SCORE_MAP,
            "chosen_C": {name: s["C"] for name, s in per_class.items()},
            "cv_score": {name: s["cv_ap"] for name, s in per_class.items()},
            "per_class": per_class,
        }


def svm_targets(labels: np.ndarray) -> np.ndarray:
    """Per-class targets 1 / -1 of labels ``[N, C]`` (1 / 0 / -1): only label 1 is positive."""
    return np.where(np.asarray(labels) == POSITIVE, 1, -1).astype(np.int64)


def fit_probe(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    *,
    recipe: ProbeRecipe,
    costs: Sequence[float],
    fixed_cost: float,
    seed: int,
    n_jobs: int | None = -1,
) -> ProbeFit:
    """Fit every class's probe on the training split (features ``[N, D]``, labels ``[N, C]``),
    choosing its C by k-fold CV (``recipe.folds``) over ``costs`` on those rows alone
    (:func:`fit_classes`); jobs in parallel over ``n_jobs`` processes (-1: every core)."""
    x = prepare_features(recipe, train_features)
    y = svm_targets(train_labels)
    costs = tuple(float(c) for c in costs)
    with Parallel(n_jobs=n_jobs) as parallel:
        fits = fit_classes(x, [y[:, c] for c in range(y.shape[1])], recipe=recipe, costs=costs, folds=recipe.folds,
                           fixed_cost=fixed_cost, seed=seed, parallel=parallel)
    return ProbeFit(recipe, costs, recipe.folds, fixed_cost, seed, fits)


def fit_fixed(
    x: np.ndarray,
    targets: np.ndarray,
    *,
    recipe: ProbeRecipe,
    cost: float,
    seed: int,
    parallel: Parallel,
) -> list[ClassFit]:
    """Fit every class with C = ``cost`` on prepared features ``x`` and the entries ``targets``
    keeps (1 positive, 0 negative, -1 left out), classes over ``parallel``'s workers."""
    problems = []
    for c in range(targets.shape[1]):
        rows = np.flatnonzero(targets[:, c] != -1)
        problems.append((rows, np.where(targets[rows, c] == POSITIVE, 1, -1).astype(np.int64)))
    return fit_classes(x, problems, recipe=recipe, costs=(), folds=0, fixed_cost=cost, seed=seed, parallel=parallel)
