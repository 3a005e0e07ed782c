"""What a synthetic image contains: its positive classes, its object instances and its size,
drawn to follow the VOC2007 trainval statistics. Every function takes the image's own generator."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from voc.constants import VOC_CLASSES

# --- label statistics (measured from the real VOC2007 trainval ImageSets) --------------------

CLASS_PRIORS: dict[str, float] = {
    "aeroplane": 0.047, "bicycle": 0.048, "bird": 0.066, "boat": 0.036, "bottle": 0.049,
    "bus": 0.037, "car": 0.142, "cat": 0.067, "chair": 0.089, "cow": 0.028,
    "diningtable": 0.040, "dog": 0.084, "horse": 0.057, "motorbike": 0.049, "person": 0.401,
    "pottedplant": 0.049, "sheep": 0.019, "sofa": 0.046, "train": 0.052, "tvmonitor": 0.051,
}
"""Fraction of images with a non-difficult object of each class (label 1)."""

CARDINALITY_PROBS: tuple[float, ...] = (0.619, 0.313, 0.060, 0.008)
"""P(an image has k = 1, 2, 3, 4 positive classes); VOC's rare 5-6 are folded into 4."""

DIFFICULT_ONLY_RATES: dict[str, float] = {
    "aeroplane": 0.0004, "bicycle": 0.0024, "bird": 0.0006, "boat": 0.0014, "bottle": 0.0036,
    "bus": 0.0022, "car": 0.0096, "cat": 0.0014, "chair": 0.0253, "cow": 0.0010,
    "diningtable": 0.0126, "dog": 0.0018, "horse": 0.0014, "motorbike": 0.0008, "person": 0.0174,
    "pottedplant": 0.0056, "sheep": 0.0002, "sofa": 0.0285, "train": 0.0004, "tvmonitor": 0.0046,
}
"""Fraction of images whose only objects of a class are difficult (label 0)."""

EXTRA_INSTANCE_PROB = 0.2
"""Chance of one more non-difficult instance of a positive class (repeated, geometric)."""
HERD_CLASSES: frozenset[str] = frozenset({"person", "car", "chair", "sheep", "cow", "bottle", "boat", "bird"})
HERD_EXTRA_INSTANCE_PROB = 0.35
MAX_INSTANCES_PER_CLASS = 4
EXTRA_DIFFICULT_PROB = 0.12
"""Chance that a positive class also gets a small difficult instance."""
MAX_OBJECTS = 8

# --- image sizes ---------------------------------------------------------------------------

IMAGE_SIZES: tuple[tuple[int, int, float], ...] = (
    (500, 375, 0.36), (375, 500, 0.10), (500, 333, 0.17), (333, 500, 0.06), (500, 334, 0.03),
    (500, 332, 0.02), (500, 400, 0.03), (500, 366, 0.03), (500, 335, 0.03), (500, 281, 0.02),
    (500, 500, 0.02),
)
"""Common VOC (width, height, probability); the rest get 500 x U(250, 499) or its transpose."""
OTHER_SIZE_RANGE = (250, 499)
OTHER_SIZE_LANDSCAPE_PROB = 0.75


# --- class sets ----------------------------------------------------------------------------


def _inclusion_probabilities(weights: np.ndarray, k: int) -> np.ndarray:
    """P(class i is among k classes drawn without replacement with probability ∝ weights)."""
    n = len(weights)
    bits = 1 << np.arange(n, dtype=np.int64)
    states, probs, used_w = np.zeros(1, np.int64), np.ones(1), np.zeros(1)
    incl = np.zeros(n)
    for _ in range(k):
        free = (states[:, None] & bits[None, :]) == 0
        step = probs[:, None] * weights[None, :] / (weights.sum() - used_w)[:, None] * free
        incl += step.sum(axis=0)
        nxt = (states[:, None] | bits[None, :]).ravel()
        keep = free.ravel()
        states, inverse = np.unique(nxt[keep], return_inverse=True)
        probs = np.bincount(inverse, weights=step.ravel()[keep])
        used_w = np.array([weights[(s & bits) != 0].sum() for s in states])
    return incl


def _marginals(weights: np.ndarray) -> np.ndarray:
    """Per-class positive rate when the cardinality follows :data:`CARDINALITY_PROBS`."""
    return sum(p * _inclusion_probabilities(weights, k + 1) for k, p in enumerate(CARDINALITY_PROBS))


@lru_cache(maxsize=1)
def class_weights() -> tuple[float, ...]:
    """Sampling weights whose without-replacement marginals match :data:`CLASS_PRIORS`.

    Fixed-point iteration ``w <- w * target / marginal(w)`` on exact marginals.
    """
    target = np.array([CLASS_PRIORS[c] for c in VOC_CLASSES])
    weights = target.copy()
    for _ in range(200):
        marg = _marginals(weights)
        if np.max(np.abs(marg / target - 1)) < 1e-6:
            break
        weights = weights * target / marg
        weights /= weights.sum()
    return tuple(float(w) for w in weights)


def sample_class_set(rng: np.random.Generator) -> tuple[str, ...]:
    """The positive classes of one image, in canonical order (cardinality, then classes)."""
    k = 1 + int(rng.choice(len(CARDINALITY_PROBS), p=CARDINALITY_PROBS))
    weights = np.array(class_weights())
    chosen = rng.choice(len(VOC_CLASSES), size=k, replace=False, p=weights / weights.sum())
    return tuple(VOC_CLASSES[i] for i in sorted(chosen))


def plan_instances(rng: np.random.Generator) -> list[tuple[str, str]]:
    """(class, kind) for every object of one image, kind ``main``, ``extra`` or ``difficult``
    (the keys of ``voc.synthetic.render.SCALE_RANGES``).

    Every image has a non-difficult ("main") object of each of its positive classes.
    """
    positives = sample_class_set(rng)
    plan = [(name, "main") for name in positives]
    for name in positives:
        p_more = HERD_EXTRA_INSTANCE_PROB if name in HERD_CLASSES else EXTRA_INSTANCE_PROB
        count = 1
        while count < MAX_INSTANCES_PER_CLASS and rng.random() < p_more:
            plan.append((name, "extra"))
            count += 1
        if rng.random() < EXTRA_DIFFICULT_PROB:
            plan.append((name, "difficult"))
    rates = np.array([DIFFICULT_ONLY_RATES[c] for c in VOC_CLASSES])
    if rng.random() < rates.sum():
        plan.append((VOC_CLASSES[int(rng.choice(len(rates), p=rates / rates.sum()))], "difficult"))
    return plan[:MAX_OBJECTS]


# --- image sizes ---------------------------------------------------------------------------


def sample_image_size(rng: np.random.Generator) -> tuple[int, int]:
    """A VOC-like (width, height)."""
    probs = np.array([p for _, _, p in IMAGE_SIZES])
    i = int(rng.choice(len(probs) + 1, p=[*probs, 1 - probs.sum()]))
    if i < len(IMAGE_SIZES):
        return IMAGE_SIZES[i][0], IMAGE_SIZES[i][1]
    other = int(rng.integers(OTHER_SIZE_RANGE[0], OTHER_SIZE_RANGE[1] + 1))
    return (500, other) if rng.random() < OTHER_SIZE_LANDSCAPE_PROB else (other, 500)
