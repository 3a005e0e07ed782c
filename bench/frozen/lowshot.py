"""Low-shot linear probes: for each k, several seeded samples of k positives and
``negatives_per_positive``·k negatives per class from the training split, a probe fitted on each
sample with a fixed C, each scored on the whole eval split (torch-free).

Sampling follows fair_self_supervision_benchmark's ``extra_scripts/create_voc_low_shot_samples.py``
(VISSL's ``create_low_shot_samples.py``): per class, k images labelled present and 19·k labelled
absent (19 = the other classes); every other training image, the ignored (difficult-only) ones
included, is left out of that class's fit. Unlike there (``random.sample`` on a shared stream), each
(seed, sample, k, class) has its own numpy Generator, so a sample does not depend on which other
samples were drawn. A k that some class cannot serve (fewer than k positives or 19·k negatives) is
skipped as a whole, and the result says which class lacked what.

C is fixed (``FrozenProtocol.fixed_cost``). VISSL's low-shot trainer (``svm_low_shot_trainer.py``)
fits every C of its grid and reports, per k, the C whose mean mAP over the samples is highest on the
test set; that choice uses the eval split, which no number here does, and k = 1 leaves too few
positives for cross-validation on the sample.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import Parallel

from bench.frozen.probe import fit_fixed, prepare_features, to_unit_interval
from bench.frozen.recipes import ProbeRecipe
from voc.constants import NEGATIVE, POSITIVE, VOC_CLASSES
from voc.metrics import evaluate

log = logging.getLogger(__name__)

LOWSHOT_METRICS: tuple[str, ...] = ("mAP", "map_voc12", "map_voc07")
"""The mAPs kept for every (k, sample) and summarised per k."""


def class_names(n: int) -> list[str]:
    """VOC's class names for 20 columns, else the column numbers (small test arrays)."""
    return list(VOC_CLASSES) if n == len(VOC_CLASSES) else [str(c) for c in range(n)]


def sample_generator(seed: int, sample: int, k: int, class_index: int) -> np.random.Generator:
    """The Generator of one class's draw in sample ``sample`` at ``k``, from the protocol ``seed``."""
    return np.random.default_rng([seed, sample, k, class_index])


def shortfall(labels: np.ndarray, k: int, negatives_per_positive: int) -> str | None:
    """Why ``k`` cannot be sampled from training labels ``[N, C]`` (the classes with fewer than k
    positives or ``negatives_per_positive``·k negatives), or ``None`` when every class can serve it."""
    labels = np.asarray(labels)
    short = []
    names = class_names(labels.shape[1])
    for c in range(labels.shape[1]):
        n_pos, n_neg = int((labels[:, c] == POSITIVE).sum()), int((labels[:, c] == NEGATIVE).sum())
        if n_pos < k or n_neg < negatives_per_positive * k:
            short.append(f"{names[c]} ({n_pos} positives, {n_neg} negatives)")
    if not short:
        return None
    return f"needs {k} positives and {negatives_per_positive * k} negatives per class; short: {', '.join(short)}"


def lowshot_targets(
    labels: np.ndarray, k: int, sample: int, seed: int, negatives_per_positive: int = 19
) -> np.ndarray:
    """One low-shot sample of training labels ``[N, C]``: int8 ``[N, C]`` with 1 for the k sampled
    positives of each class, 0 for its ``negatives_per_positive``·k sampled negatives and -1 for
    every other entry (left out of that class's fit). Positives are drawn from label 1, negatives
    from label 0, without replacement. Raises ValueError where a class has too few (:func:`shortfall`)."""
    labels = np.asarray(labels)
    reason = shortfall(labels, k, negatives_per_positive)
    if reason is not None:
        raise ValueError(f"cannot sample k={k}: {reason}")
    targets = np.full(labels.shape, -1, dtype=np.int8)
    for c in range(labels.shape[1]):
        rng = sample_generator(seed, sample, k, c)
        positives = np.flatnonzero(labels[:, c] == POSITIVE)
        negatives = np.flatnonzero(labels[:, c] == NEGATIVE)
        targets[rng.choice(positives, size=k, replace=False), c] = POSITIVE
        targets[rng.choice(negatives, size=negatives_per_positive * k, replace=False), c] = NEGATIVE
    return targets


def _stats(values: list[float | None]) -> dict[str, float | None]:
    if not values or any(v is None for v in values):
        return {"mean": None, "min": None, "max": None, "std": None}
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max()), "std": float(a.std())}


@dataclass
class LowShotResult:
    """Every (k, sample)'s mAPs, their summary per k, the skipped k values, and the run whose
    predictions and metrics the record carries (sample 1 at the largest k that ran)."""

    runs: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    reported_k: int
    reported_sample: int
    scores: np.ndarray
    metrics: dict[str, Any]
    cost: float
    samples: int
    negatives_per_positive: int
    seed: int

    def summary(self) -> list[dict[str, Any]]:
        """Per k that ran: mean, min, max and std (population, as VISSL) over the samples of each mAP."""
        out = []
        for k in sorted({run["k"] for run in self.runs}):
            runs = [run for run in self.runs if run["k"] == k]
            out.append({"k": k, "samples": len(runs), **{m: _stats([run[m] for run in runs]) for m in LOWSHOT_METRICS}})
        return out

    def section(self) -> dict[str, Any]:
        """The record's ``lowshot`` section."""
        return {
            "k_values_run": sorted({run["k"] for run in self.runs}),
            "skipped_k": self.skipped,
            "samples": self.samples,
            "negatives_per_positive": self.negatives_per_positive,
            "C": self.cost,
            "C_choice": "fixed (FrozenProtocol.fixed_cost): no C is chosen on the eval split",
            "sampling": (
                "per class: k label-1 and negatives_per_positive*k label-0 training images without replacement, "
                "numpy default_rng([seed, sample, k, class index]); other training images left out of that class"
            ),
            "seed": self.seed,
            "metrics_are": f"sample 1 at k={self.reported_k} (predictions.csv holds its scores)",
            "summary": self.summary(),
            "runs": self.runs,
        }


def run_lowshot(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    eval_features: np.ndarray,
    eval_labels: np.ndarray,
    *,
    recipe: ProbeRecipe,
    k_values: tuple[int, ...],
    samples: int,
    negatives_per_positive: int,
    cost: float,
    seed: int,
    n_jobs: int | None = -1,
) -> LowShotResult:
    """Fit and score a probe for every k of ``k_values`` and every sample 1..``samples``; classes in
    parallel over ``n_jobs`` processes. Raises ValueError when no k can be sampled."""
    x = prepare_features(recipe, train_features)
    x_eval = prepare_features(recipe, eval_features)
    eval_labels = np.asarray(eval_labels).astype(np.int64)
    runs: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    reported: tuple[int, np.ndarray, dict[str, Any]] | None = None
    with Parallel(n_jobs=n_jobs) as parallel:
        for k in sorted(k_values):
            reason = shortfall(train_labels, k, negatives_per_positive)
            if reason is not None:
                log.warning("low-shot k=%d skipped: %s", k, reason)
                skipped.append({"k": k, "reason": reason})
                continue
            for sample in range(1, samples + 1):
                targets = lowshot_targets(train_labels, k, sample, seed, negatives_per_positive)
                fits = fit_fixed(x, targets, recipe=recipe, cost=cost, seed=seed, parallel=parallel)
                scores = to_unit_interval(np.stack([fit.decision(x_eval) for fit in fits], axis=1))
                metrics = evaluate(scores, eval_labels, class_names(scores.shape[1]))
                runs.append({"k": k, "sample": sample, **{m: metrics[m] for m in LOWSHOT_METRICS}})
                if sample == 1:
                    reported = (k, scores, metrics)
            log.info("low-shot k=%d: mAP %s over %d samples", k,
                     " ".join(f"{run['mAP']:.4f}" for run in runs if run["k"] == k and run["mAP"] is not None),
                     samples)
    if reported is None:
        raise ValueError(f"no low-shot k value can be sampled from the training split: {skipped[0]['reason']}")
    k, scores, metrics = reported
    return LowShotResult(runs, skipped, k, 1, scores, metrics, cost, samples, negatives_per_positive, seed)
