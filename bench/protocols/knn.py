"""``knn``: a weighted k-nearest-neighbour classifier on the frozen backbone's cached features, as
DINO's ``eval_knn.py`` (Caron et al., "Emerging Properties in Self-Supervised Vision
Transformers", 2021): cosine similarity, the k = 20 nearest training images, each weighted by
exp(similarity / T) with T = 0.07. Nothing is fitted or chosen, so nothing can be tuned on the eval
split. Torch-free (numpy).

Multi-label: a class's score for an eval image is the weighted vote of its k neighbours' labels for
that class, divided by the neighbours' total weight,

    score_c = sum_i w_i [y_ic = 1] / sum_i w_i,   w_i = exp(cos(x, x_i) / T),

the weighted fraction of neighbours that hold the class, in [0, 1] (0.5: a weighted majority).
DINO sums the same weights per class and takes the arg max (single-label), where dividing by the
total changes nothing; across images it makes the scores comparable, which a class's AP ranks.
A training label other than 1 (absent, or ignored: difficult only) votes 0, as an SVM target
counts it negative in the ``linear`` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.protocols.settings import FrozenProtocol
from bench.protocols.spec import FeatureSplits, FrozenSpec, Scored

K = 20
"""Neighbours per eval image (DINO ``eval_knn.py``: ``--nb_knn`` 20, the value its paper reports)."""
TEMPERATURE = 0.07
"""The weight of a neighbour is exp(similarity / T) (DINO ``eval_knn.py``: ``--temperature`` 0.07)."""
ROWS_PER_BLOCK = 1024
"""Eval images per similarity block: memory stays at a few arrays of 1024 x (training images) values
(the float64 similarities and their int64 order)."""


def unit_rows(features: np.ndarray) -> np.ndarray:
    """``features`` ``[N, D]`` as float64 rows of unit L2 norm (a zero row stays zero)."""
    x = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def knn_scores(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    eval_features: np.ndarray,
    k: int = K,
    temperature: float = TEMPERATURE,
) -> np.ndarray:
    """Scores ``[N_eval, C]`` in [0, 1]: each class's weighted vote among an eval image's ``k``
    nearest training images by cosine similarity (module docstring). Ties in similarity go to the
    training image listed first; ``k`` larger than the training split uses every training image."""
    if k < 1 or not temperature > 0:
        raise ValueError(f"k-NN needs k >= 1 and a positive temperature, got k={k}, T={temperature}")
    train = unit_rows(train_features)
    positive = (np.asarray(train_labels) == 1).astype(np.float64)
    k = min(k, len(train))
    out = []
    for start in range(0, len(eval_features), ROWS_PER_BLOCK):
        similarity = unit_rows(eval_features[start:start + ROWS_PER_BLOCK]) @ train.T
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(similarity, nearest, axis=1)
        weights = np.exp((top - top[:, :1]) / temperature)  # the largest is 1: exp cannot overflow
        votes = np.einsum("nk,nkc->nc", weights, positive[nearest])
        out.append(votes / weights.sum(axis=1, keepdims=True))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, positive.shape[1]), np.float32)


@dataclass(frozen=True)
class KNNProtocol(FrozenProtocol):
    """``knn``'s settings: the data and view only; k and T are the protocol's constants (:data:`K`,
    :data:`TEMPERATURE`), recorded under ``knn``."""

    name: str = "knn"

    def to_dict(self) -> dict[str, Any]:
        """Every field; the vote's settings under ``knn``."""
        return {**super().to_dict(), "knn": {"k": K, "temperature": TEMPERATURE, "similarity": "cosine"}}


class KNNSpec(FrozenSpec):
    name = "knn"
    help = ("a weighted k-NN vote on the same cached features: cosine similarity, the 20 nearest training images "
            "weighted by exp(sim / 0.07), nothing fitted (DINO's eval_knn.py)")
    settings = KNNProtocol

    def describe(self, protocol: Any) -> str:
        return f"weighted {K}-NN vote, cosine similarity, T {TEMPERATURE:g}"

    def score(self, features: FeatureSplits, protocol: Any, n_jobs: int | None) -> Scored:
        from voc.metrics import evaluate

        scores = knn_scores(features.train_features, features.train_labels, features.eval_features)
        section = {
            "k": K,
            "neighbours_used": min(K, len(features.train_features)),
            "temperature": TEMPERATURE,
            "similarity": "cosine of the features (each divided by its L2 norm)",
            "score": "sum_i w_i [y_ic = 1] / sum_i w_i over the k nearest training images, w_i = exp(sim_i / T)",
            "source": "DINO eval_knn.py (knn_classifier; --nb_knn 20, --temperature 0.07)",
        }
        return Scored(scores, evaluate(scores, features.eval_labels), {"knn": section})


SPEC = KNNSpec()
