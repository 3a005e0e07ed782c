"""Where the classifier's final layer starts (``TrainConfig.head_init``): timm's random
initialisation, ``zero`` (weights 0, biases at the log prior odds) or ``probe`` (LP-FT's stage 1).

Stage 1 of ``probe`` (Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution", ICLR 2022): the backbone's pooled pre-logits features of the training split,
at the fine-tune's own eval view (no augmentation; the mean over a multi-crop view's crops),
computed by the frozen protocols' machinery and kept in their feature cache; one L2-regularised
logistic regression per class on them (standardised inside the fit, C chosen per class by 3-fold
stratified CV on the training split alone over scikit-learn's log grid, :data:`HEAD_PROBE_RECIPE`);
the fitted scaler folded into the weights, so that the head's logit of a raw feature ``x`` is the
probe's decision value ``w·x + b``, and copied into the classifier. A class with fewer than 3
positives or negatives in the training split cannot be cross-validated: its head is weights 0 and
its bias the log-odds of its training frequency (the ``zero`` head), and the record names it.

The eval split's features at the same view score the probe as it stands, before any step: the
record's ``head_init.eval_metrics``, beside the fine-tuned model's (not used for any choice).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.data import DataSource
from bench.frozen.probe import fit_classes, svm_targets
from bench.frozen.recipes import LOGREG_RECIPE, ProbeRecipe
from bench.frozen.runner import (
    FrozenOptions,
    _Extractor,
    loader_arrangement,
    plan_split,
    pooled_features,
    split_features,
)
from bench.hardware import autocast_dtype
from bench.model import CropMaxClassifier, DataConfig
from bench.protocols.settings import Protocol
from bench.weights import Weights
from voc.config import DEFAULT_RANDAUGMENT, TransformConfig
from voc.constants import IGNORED, POSITIVE, VOC_CLASSES
from voc.feature_cache import FeatureCache
from voc.io import atomic_output
from voc.metrics import evaluate

log = logging.getLogger(__name__)

HEAD_FILE = "head_init.pt"
"""A finished stage 1 in the run folder (its head and record section, with the run's config hash):
``--resume`` loads it instead of fitting again."""

HEAD_PROBE_RECIPE: ProbeRecipe = replace(
    LOGREG_RECIPE,
    name="logreg-head",
    folds=3,
    source=(
        "LP-FT (Kumar et al., ICLR 2022): a logistic-regression probe on the frozen features as the fine-tune's "
        "starting head; L2 logistic regression on standardised features over Kornblith et al.'s log grid (the "
        "logreg probe), C per class by 3-fold stratified CV on the training split (VISSL's fold count), the "
        "scaler folded into the copied weights"
    ),
)
"""The probe stage 1 fits: the ``logreg`` probe's estimator and grid, 3 folds."""

PRIOR_SMOOTHING = 0.5
"""The log prior odds of a class are those of ``(positives + 0.5) / (labelled + 1)``: finite for a
class with no positive (or no negative) training image."""


def prior_log_odds(labels: np.ndarray) -> np.ndarray:
    """Per class, the log-odds of its smoothed training frequency (:data:`PRIOR_SMOOTHING`),
    float64 ``[C]``, from labels ``[N, C]`` (1 / 0 / -1; ignored entries left out)."""
    labels = np.asarray(labels)
    positives = (labels == POSITIVE).sum(axis=0)
    labelled = (labels != IGNORED).sum(axis=0)
    p = (positives + PRIOR_SMOOTHING) / (labelled + 2 * PRIOR_SMOOTHING)
    return np.log(p / (1.0 - p))


def linear_head(classifier: nn.Module) -> nn.Linear:
    """The classifier's final layer (``get_classifier()``) where it is an ``nn.Linear``; ValueError otherwise."""
    head = classifier.get_classifier() if hasattr(classifier, "get_classifier") else None
    if not isinstance(head, nn.Linear):
        raise ValueError(
            f"head_init needs a linear final layer (get_classifier() is {type(head).__name__}); "
            "use --head-init random for this model"
        )
    return head


@dataclass
class StartingHead:
    """A head to copy in: ``weight`` ``[C, D]`` (``None``: keep the layer's zeros-to-be, i.e. 0) and
    ``bias`` ``[C]``, and the record's ``head_init`` section."""

    weight: np.ndarray | None
    bias: np.ndarray
    section: dict[str, Any] = field(default_factory=dict)

    def copy_into(self, classifier: nn.Module) -> None:
        """Set the classifier's final layer to this head (ValueError where the shapes differ)."""
        head = linear_head(classifier)
        weight = np.zeros(tuple(head.weight.shape)) if self.weight is None else self.weight
        if tuple(weight.shape) != tuple(head.weight.shape) or head.bias is None or len(self.bias) != len(head.bias):
            raise ValueError(f"a head of shape {tuple(weight.shape)} does not fit the classifier's "
                             f"{tuple(head.weight.shape)}")
        with torch.no_grad():
            head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
            head.bias.copy_(torch.as_tensor(self.bias, dtype=head.bias.dtype))

    def save(self, path: Path, config_hash: str) -> None:
        """Write the head and its section atomically, for ``--resume``."""
        with atomic_output(path, "wb") as fh:
            torch.save({"config_hash": config_hash, "weight": self.weight, "bias": self.bias,
                        "section": self.section}, fh)

    @classmethod
    def load(cls, path: Path, config_hash: str) -> StartingHead | None:
        """The head ``path`` holds where it was fitted for the same config, else ``None``."""
        try:
            saved = torch.load(path, weights_only=False, map_location="cpu")
        except (OSError, RuntimeError, EOFError):
            return None
        if not isinstance(saved, dict) or saved.get("config_hash") != config_hash:
            return None
        return cls(saved["weight"], saved["bias"], saved["section"])


def zero_head(train_labels: np.ndarray) -> StartingHead:
    """Weights 0, each bias at its class's log prior odds: every image scored with the training
    split's smoothed class frequency (the label-prior baseline) before the first step."""
    return StartingHead(None, prior_log_odds(train_labels), {
        "kind": "zero",
        "bias": f"log-odds of (positives + {PRIOR_SMOOTHING:g}) / (labelled + {2 * PRIOR_SMOOTHING:g}) per class, "
                "training split",
    })


def fit_head(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    *,
    seed: int,
    n_jobs: int | None = -1,
    recipe: ProbeRecipe = HEAD_PROBE_RECIPE,
    class_names: Sequence[str] = VOC_CLASSES,
) -> StartingHead:
    """Stage 1's head from the training split's raw features ``[N, D]`` and labels ``[N, C]``: each
    class with at least ``recipe.folds`` positives and negatives (label 1 positive; 0 and ignored
    -1 negative, as the frozen probes train) gets the logistic regression whose C won the CV, its
    scaler folded in (``w = coef / scale``, ``b = intercept - Σ coef · mean / scale``); every other
    class the ``zero`` head's weights 0 and log prior odds. The section lists each class's C, its
    CV AP and how it was set."""
    from joblib import Parallel

    x = np.asarray(train_features, dtype=np.float64)
    targets = svm_targets(train_labels)
    n_classes, dim = targets.shape[1], x.shape[1]
    weight = np.zeros((n_classes, dim))
    bias = prior_log_odds(train_labels)
    positives = (targets == 1).sum(axis=0)
    negatives = len(targets) - positives
    fitted = [c for c in range(n_classes) if positives[c] >= recipe.folds and negatives[c] >= recipe.folds]
    with Parallel(n_jobs=n_jobs) as parallel:
        fits = fit_classes(x, [targets[:, c] for c in fitted], recipe=recipe, costs=recipe.costs, folds=recipe.folds,
                           fixed_cost=1.0, seed=seed, parallel=parallel)
    per_class: dict[str, Any] = {}
    for c, name in enumerate(class_names):
        per_class[name] = {"how": "prior", "C": None, "cv_ap": None,
                           "n_positive": int(positives[c]), "n_negative": int(negatives[c])}
    for c, fit in zip(fitted, fits, strict=True):
        scaler, logreg = fit.estimator.named_steps["standardscaler"], fit.estimator.named_steps["logisticregression"]
        coef = logreg.coef_[0] / scaler.scale_
        weight[c] = coef
        bias[c] = float(logreg.intercept_[0] - np.dot(coef, scaler.mean_))
        per_class[class_names[c]].update(how="probe", C=fit.cost, cv_ap=max(fit.cv_ap) if fit.cv_ap else None,
                                         not_converged_fits=fit.not_converged_fits)
    prior_classes = [name for name, entry in per_class.items() if entry["how"] == "prior"]
    return StartingHead(weight, bias, {
        "kind": "probe",
        "recipe": recipe.to_dict(),
        "source": recipe.source,
        "cv": {"split": "training", "kind": "StratifiedKFold", "n_splits": recipe.folds, "shuffle": True,
               "random_state": seed, "scoring": "average_precision (scikit-learn, non-interpolated)",
               "chosen": "per class, the C with the highest mean CV AP; ties go to the smallest C"},
        "train_targets": "label 1 positive; 0 and -1 (ignored) negative",
        "too_few_for_cv": (f"a class with fewer than {recipe.folds} positives or negatives in the training split: "
                           "weights 0, bias its log prior odds"),
        "prior_classes": prior_classes,
        "cv_mAP": float(np.mean([e["cv_ap"] for e in per_class.values() if e["cv_ap"] is not None]))
        if len(prior_classes) < n_classes else None,
        "per_class": per_class,
    })


def eval_view(protocol: Protocol, data_config: DataConfig) -> TransformConfig:
    """The fine-tune's eval view (its resize, crops and decoder, the backbone's normalisation) with
    the training augmentation at its defaults: what the feature cache keys stage 1's features by,
    the same key a frozen protocol's features of that view have."""
    view = protocol.transform_config(data_config.mean, data_config.std, data_config.interpolation)
    return replace(view, hflip=False, rotation=0.0, augment="basic", randaugment=DEFAULT_RANDAUGMENT, erasing=0.0,
                   crop_scale=1.0)


def probe_head(
    model_name: str,
    classifier: CropMaxClassifier,
    data_config: DataConfig,
    *,
    protocol: Protocol,
    data: DataSource,
    weights: Weights,
    cache: FeatureCache,
    device: torch.device,
    precision: str,
    cache_dir: Path | None = None,
    n_jobs: int | None = -1,
) -> StartingHead:
    """Stage 1 of LP-FT for ``classifier`` (before any step): features of the training and eval
    splits at the fine-tune's eval view (:func:`eval_view`), from ``cache`` or computed with the
    classifier's own backbone in eval mode and cached; :func:`fit_head` on the training split's;
    the probe's metrics on the eval split's, with the timings, in the section."""
    started = time.perf_counter()
    backbone = classifier.backbone
    was_training = backbone.training
    # as the frozen protocols extract (and as the fine-tune will run): channels-last was 1.9x faster
    # than contiguous for Lite0 at 384 px on a 2-core CPU
    backbone.eval().to(device=device, memory_format=torch.channels_last)
    extractor = _Extractor(model_name, weights, backbone, eval_view(protocol, data_config), precision, device)
    as_frozen = replace(protocol, batch_size=protocol.eval_batch_size)
    options = FrozenOptions(cache_dir=cache_dir)
    loader = loader_arrangement(options, device.type)
    encode = partial(pooled_features, backbone)
    try:
        train, evals = (
            split_features(plan_split(split, extractor, protocol=as_frozen, data=data, options=options, cache=cache,
                                      loader=loader), encode, extractor, cache)
            for split in (protocol.train_split, protocol.eval_split)
        )
    finally:
        backbone.train(was_training)
    extracted = time.perf_counter()
    head = fit_head(train.features, train.labels, seed=protocol.seed, n_jobs=n_jobs)
    fitted = time.perf_counter()
    decision = evals.features.astype(np.float64) @ head.weight.T + head.bias
    metrics = evaluate(1.0 / (1.0 + np.exp(-decision)), evals.labels.astype(np.int64))
    head.section.update(
        view={"resize": extractor.transform.resize, "crop": extractor.transform.crop,
              "crop_mode": extractor.transform.crop_mode, "decode": extractor.transform.decode},
        features={"precision": precision, "autocast": str(autocast_dtype(precision)),
                  "cache": {s.split: {"path": str(s.path), "from_cache": s.from_cache,
                                      "images_per_s": s.images_per_s} for s in (train, evals)}},
        eval_metrics={k: metrics[k] for k in ("mAP", "map_voc07", "map_voc12", "accuracy", "tail_accuracy")},
        eval_ap_per_class={name: entry["ap"] for name, entry in metrics["per_class"].items()},
        time_s={"features": round(extracted - started, 3), "fit": round(fitted - extracted, 3),
                "total": round(fitted - started, 3)},
    )
    log.info("%s: stage 1, probe head fitted in %.1f s (features %.1f s); its eval mAP %.4f before any step",
             model_name, fitted - started, extracted - started, metrics["mAP"])
    return head
