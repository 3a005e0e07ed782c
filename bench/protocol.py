"""The training and evaluation protocols: frozen configs applied identically to every backbone.

This is the single statement of each protocol. :class:`Protocol` is the fine-tuning (``course``)
protocol; :class:`LinearProtocol` the frozen-backbone ones (``linear``: a probe on cached features,
``lowshot``: probes on k-shot samples of them), with the probe recipes (:data:`PROBE_RECIPES`) they
apply. The ``voc`` package's config objects (labels, transforms) are built from them
(``label_config``, ``transform_config``); no other module lists their fields again. Torch-free:
the command line reads them before deciding whether to load torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, TypeVar

from voc.config import LabelConfig, TransformConfig
from voc.constants import IMAGENET_MEAN, IMAGENET_STD

PRECISIONS: tuple[str, ...] = ("auto", "bf16-mixed", "16-mixed", "32-true")
"""``auto``: bf16 mixed precision where the hardware runs it fast, else fp32 (``bench.hardware``)."""
COMPILE_MODES: tuple[str, ...] = ("auto", "on", "off")
"""``--compile`` of the frozen protocols' feature extraction: by ``bench.train.compiled``'s measured rule,
always, never."""

PROTOCOL_NAMES: tuple[str, ...] = ("course", "linear", "lowshot")
"""``course``: fine-tune (:class:`Protocol`); ``linear`` and ``lowshot``: frozen backbone, linear
probes on its cached features (:class:`LinearProtocol`)."""
FROZEN_PROTOCOLS: tuple[str, ...] = ("linear", "lowshot")


_P = TypeVar("_P", bound="_ProtocolMixin")


class _ProtocolMixin:
    """What every protocol dataclass derives the same way from its fields: the ``voc`` configs it
    builds and copies with explicit flags applied. A protocol without augmentation fields (the
    frozen ones) sets ``hflip``/``rotation`` as class constants."""

    @property
    def input_size(self) -> int:
        """Side of the square crops the backbone sees (the resized image in ``full`` mode)."""
        return self.transform_config().input_size

    def label_config(self) -> LabelConfig:
        """How the protocol labels its images (``voc.config.LabelConfig``)."""
        return LabelConfig(source=self.label_source, difficult=self.difficult, positive_only=self.positive_only)

    def transform_config(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        interpolation: str = "bilinear",
    ) -> TransformConfig:
        """The protocol's image pipeline, normalised with the backbone's ``mean``/``std`` and
        resampled with its ``interpolation`` (``voc.config.TransformConfig``)."""
        return TransformConfig(
            resize=self.resize,
            crop=self.crop,
            crop_mode=self.crop_mode,
            mean=tuple(mean),
            std=tuple(std),
            interpolation=interpolation,
            hflip=self.hflip,
            rotation=self.rotation,
        )

    def with_overrides(self: _P, **overrides: Any) -> _P:
        """A copy with the non-``None`` ``overrides`` applied (explicit flags win over defaults)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown protocol fields {unknown}; valid fields are {sorted(known)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Protocol(_ProtocolMixin):
    """Everything that decides how a backbone is trained and evaluated (stored with each result).

    Every field is applied: the labels and transforms through :meth:`label_config` and
    :meth:`transform_config`, the optimisation through ``voc.module.MultiLabelClassifier``, the
    loop through the Lightning trainer. The defaults are the course project's protocol: Adam at
    lr 1e-4, batch 8, no scheduler, the mean class-wise BCE on crop-max logits, resize 400 →
    FiveCrop 224, flip + ±25° rotation, VOC2012 train → val, difficult objects negative, images
    without a positive label left out, seeded.
    """

    name: str = "course"
    """Which recipe this is; every record and leaderboard row carries it, and rows of different
    protocols are never ranked in one table. Variants sized for a machine (the synthetic set's
    CPU-sized one) keep the name of the recipe they scale down."""
    year: str = "2012"
    train_split: str = "train"
    eval_split: str = "val"
    epochs: int = 10
    batch_size: int = 8
    eval_batch_size: int = 16
    lr: float = 1e-4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    resize: int = 400
    crop: int = 224
    crop_mode: str = "five"
    hflip: bool = True
    rotation: float = 25.0
    difficult: str = "negative"
    label_source: str = "annotations"
    positive_only: bool = True
    precision: str = "auto"
    seed: int = 0
    limit_train_batches: float | None = None
    limit_eval_batches: float | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid values are {list(PRECISIONS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COURSE_PROTOCOL = Protocol()
"""The course project's protocol, for real VOC."""

CPU_SYNTHETIC_PROTOCOL = Protocol(
    epochs=6,
    batch_size=16,
    eval_batch_size=64,
    lr=1e-3,
    resize=112,
    crop=112,
    crop_mode="full",
)
"""The embedded default on the synthetic set: sized to finish on a 2-core CPU in minutes."""


def config_hash(*parts: dict[str, Any]) -> str:
    """A short stable hash of JSON-able dicts (protocol, data), to recognise the same config."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# -- frozen-backbone protocols -----------------------------------------------------------------


@dataclass(frozen=True)
class ProbeRecipe:
    """How one linear probe is fitted on frozen features, for every class and every backbone alike
    (``bench.probe`` builds the scikit-learn estimators from it)."""

    name: str
    features: str
    """``l2``: each image's feature divided by its L2 norm + 1e-5 (VISSL ``_normalize_features``);
    ``standardise``: a StandardScaler fitted on the training rows of each fit (in every CV fold too)."""
    estimator: str
    """``LinearSVC`` or ``LogisticRegression`` (scikit-learn), one binary problem per class."""
    costs: tuple[float, ...]
    """The default grid of C (scikit-learn's inverse regularisation strength)."""
    folds: int
    """Stratified, shuffled, seeded k-fold CV on the training split chooses C per class."""
    max_iter: int
    tol: float
    class_weight: tuple[tuple[int, float], ...] | None
    """(label, weight) pairs for the SVM targets -1 / 1, e.g. ``((1, 2.0), (-1, 1.0))``."""
    source: str
    """Where the recipe comes from (in the record's probe section, not in the config hash)."""

    def to_dict(self) -> dict[str, Any]:
        """The settings that decide the fits (not :attr:`source`)."""
        data = asdict(self)
        del data["source"]
        data["costs"] = list(self.costs)
        data["class_weight"] = None if self.class_weight is None else {str(k): w for k, w in self.class_weight}
        return data


VISSL_VOC07_SVM_COSTS: tuple[float, ...] = (0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0)
"""VISSL's cost grid for the VOC07 linear SVM: ``SVM.costs.costs_list`` of
``configs/config/benchmark/linear_image_classification/voc07/eval_resnet_8gpu_transfer_voc07_svm.yaml``
(the low-shot config, ``low_shot_transfer/voc07/eval_resnet_8gpu_transfer_voc07_low_shot_svm.yaml``,
lists the same); ``costs.base`` is -1 in ``vissl/config/defaults.yaml``, so no powers are added."""

LOGREG_COSTS: tuple[float, ...] = tuple(10.0**e for e in range(-6, 6))
"""C = 1e-6, 1e-5, ..., 1e5: one value per decade over the range of Kornblith et al.'s grid (they
searched 45 log-spaced values in it)."""

SVM_RECIPE = ProbeRecipe(
    name="svm",
    features="l2",
    estimator="LinearSVC",
    costs=VISSL_VOC07_SVM_COSTS,
    folds=3,
    max_iter=2000,
    tol=1e-4,
    class_weight=((1, 2.0), (-1, 1.0)),
    source=(
        "VISSL vissl/utils/svm_utils/svm_trainer.py (SVMTrainer.train_cls: LinearSVC(C, class_weight={1: 2, -1: 1}, "
        "penalty='l2', loss='squared_hinge', dual=True, tol=1e-4, max_iter=2000), cross_val_score(cv=3, "
        "scoring='average_precision'), C = argmax of the mean CV AP per class; features L2-normalised) = "
        "fair_self_supervision_benchmark tools/svm/train_svm_kfold.py + svm_helper.py + test_svm.py"
    ),
)
LOGREG_RECIPE = ProbeRecipe(
    name="logreg",
    features="standardise",
    estimator="LogisticRegression",
    costs=LOGREG_COSTS,
    folds=5,
    max_iter=1000,
    tol=1e-4,
    class_weight=None,
    source=(
        "Kornblith, Shlens, Le, 'Do Better ImageNet Models Transfer Better?' (CVPR 2019): L2-regularised "
        "logistic regression on penultimate-layer features (L-BFGS), the penalty chosen over a log grid from "
        "1e-6 to 1e5; they choose it on a held-out validation split, we by 5-fold CV on the training split"
    ),
)
PROBE_RECIPES: dict[str, ProbeRecipe] = {"svm": SVM_RECIPE, "logreg": LOGREG_RECIPE}
PROBES: tuple[str, ...] = tuple(PROBE_RECIPES)

LOWSHOT_K_VALUES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 96)
"""VISSL's and fair_self_supervision_benchmark's low-shot k values (``SVM.low_shot.k_values``;
``extra_scripts/create_voc_low_shot_samples.py``)."""


def _sorted_unique_positive(values: Sequence[float], what: str) -> tuple[float, ...]:
    out = tuple(sorted({float(v) for v in values}))
    if not out or any(not (v > 0 and v < float("inf")) for v in out):
        raise ValueError(f"{what} must be positive finite numbers, got {list(values)}")
    return out


@dataclass(frozen=True)
class LinearProtocol(_ProtocolMixin):
    """A frozen-backbone protocol: features once per image, then linear probes on them.

    ``linear``: the backbone is frozen (eval mode, no gradients); each image's timm pooled
    pre-logits feature (``forward_head(forward_features(x), pre_logits=True)``, fp32, the mean over
    the view's crops) is computed once and cached; a probe (:data:`PROBE_RECIPES`) is fitted per
    class on the training split, its C chosen there by k-fold CV over ``costs``, and scores the
    eval split. ``lowshot``: for each k and each of ``samples`` seeded samples, k positives and
    ``negatives_per_positive``·k negatives per class from the training split, the probe fitted on
    them with the fixed C ``fixed_cost``, scored on the whole eval split.

    Defaults are VISSL's VOC07 benchmark: VOC2007 trainval → test, the whole image resized to
    224 × 224, difficult-only classes ignored in evaluation (they count as negatives when an SVM is
    fitted, as in VISSL's ``svm_trainer.py``, and are never sampled in low-shot), every image kept.
    Every field is applied; :meth:`to_dict` records the ones its ``name`` uses.
    """

    name: str = "linear"
    year: str = "2007"
    train_split: str = "trainval"
    eval_split: str = "test"
    resize: int = 224
    crop: int = 224
    crop_mode: str = "full"
    difficult: str = "ignore"
    label_source: str = "annotations"
    positive_only: bool = False
    precision: str = "auto"
    """Feature extraction under this precision (``auto``: bf16 autocast where fast); features are
    stored as float32 whatever it is."""
    batch_size: int = 32
    """Images per feature-extraction batch."""
    seed: int = 0
    """Seeds the CV folds, the SVM solver, the low-shot samples and a random-init backbone."""
    probe: str = "svm"
    costs: tuple[float, ...] | None = None
    """The grid C is chosen from (``linear``); ``None``: the probe recipe's grid."""
    fixed_cost: float = 1.0
    """C of every low-shot fit, and of a class whose training split has too few positives or
    negatives for 2-fold CV (``linear``)."""
    k_values: tuple[int, ...] = LOWSHOT_K_VALUES
    samples: int = 5
    negatives_per_positive: int = 19
    hflip: ClassVar[bool] = False
    rotation: ClassVar[float] = 0.0
    """Features are extracted from the view as it is: no augmentation (not fields: nothing to set)."""

    def __post_init__(self) -> None:
        if self.name not in FROZEN_PROTOCOLS:
            raise ValueError(f"unknown frozen protocol {self.name!r}; valid values are {list(FROZEN_PROTOCOLS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid values are {list(PRECISIONS)}")
        if self.probe not in PROBE_RECIPES:
            raise ValueError(f"unknown probe {self.probe!r}; valid values are {list(PROBES)}")
        if self.costs is not None:
            object.__setattr__(self, "costs", _sorted_unique_positive(self.costs, "probe costs"))
        _sorted_unique_positive([self.fixed_cost], "the fixed probe cost")
        object.__setattr__(self, "fixed_cost", float(self.fixed_cost))
        ks = tuple(sorted({int(k) for k in self.k_values}))
        if not ks or ks[0] < 1:
            raise ValueError(f"low-shot k values must be positive integers, got {list(self.k_values)}")
        object.__setattr__(self, "k_values", ks)
        if self.seed < 0:
            raise ValueError(f"the seed of a frozen protocol must be non-negative (numpy's seeding), got {self.seed}")
        for field_name in ("batch_size", "samples", "negatives_per_positive"):
            if getattr(self, field_name) < 1:
                raise ValueError(f"{field_name} must be at least 1, got {getattr(self, field_name)}")

    @property
    def recipe(self) -> ProbeRecipe:
        return PROBE_RECIPES[self.probe]

    @property
    def cost_grid(self) -> tuple[float, ...]:
        """The C values CV chooses from: ``costs``, else the recipe's grid."""
        return self.costs if self.costs is not None else self.recipe.costs

    def to_dict(self) -> dict[str, Any]:
        """The record's ``config``: the fields this protocol applies, the resolved cost grid and the
        probe recipe. ``linear`` leaves out the low-shot fields; ``lowshot`` the grid (its fits use
        ``fixed_cost``)."""
        data = asdict(self)
        data["costs"] = list(self.cost_grid)
        data["k_values"] = list(self.k_values)
        data["recipe"] = self.recipe.to_dict()
        if self.name == "linear":
            for key in ("k_values", "samples", "negatives_per_positive"):
                del data[key]
        else:
            del data["costs"]
        return data


LINEAR_PROTOCOL = LinearProtocol()
"""VISSL's VOC07 linear benchmark (real VOC): VOC2007 trainval → test, 224 × 224 whole image, SVM."""
LOWSHOT_PROTOCOL = LinearProtocol(name="lowshot")
"""VISSL's VOC07 low-shot benchmark (real VOC), on the same cached features."""
LINEAR_SYNTHETIC_PROTOCOL = LinearProtocol(year="2012", train_split="train", eval_split="val")
"""The frozen protocols on the synthetic set (which has train and val): everything else as on real
VOC, the 224 × 224 view included."""
LOWSHOT_SYNTHETIC_PROTOCOL = replace(LINEAR_SYNTHETIC_PROTOCOL, name="lowshot")


def frozen_protocol(name: str, synthetic: bool) -> LinearProtocol:
    """The default ``linear`` or ``lowshot`` protocol for real VOC or the synthetic set."""
    table = {
        ("linear", False): LINEAR_PROTOCOL,
        ("lowshot", False): LOWSHOT_PROTOCOL,
        ("linear", True): LINEAR_SYNTHETIC_PROTOCOL,
        ("lowshot", True): LOWSHOT_SYNTHETIC_PROTOCOL,
    }
    try:
        return table[(name, synthetic)]
    except KeyError:
        raise ValueError(f"unknown frozen protocol {name!r}; valid values are {list(FROZEN_PROTOCOLS)}") from None
