"""What every protocol's settings share: the fine-tuning recipe's dataclass (:class:`Protocol`), the
frozen-feature protocols' base (:class:`FrozenProtocol`), the record's ``config`` rules and its hash.

Each protocol module of this package declares its own values over these (``finetune``: the four
recipes; each frozen protocol's module: a :class:`FrozenProtocol` subclass with the fields that
protocol applies). This module imports no protocol module and no registry, so a protocol module may
import it at its top. The ``voc`` package's config objects (labels, transforms, training) are built
from the settings (``label_config``, ``transform_config``, ``train_config``). Torch-free: the command
line reads them before deciding whether to load torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, TypeVar

from voc.config import DECODERS, DEFAULT_RANDAUGMENT, AugmentConfig, LabelConfig, TrainConfig, TransformConfig
from voc.constants import IMAGENET_MEAN, IMAGENET_STD

PRECISIONS: tuple[str, ...] = ("auto", "bf16-mixed", "16-mixed", "32-true")
"""``auto``: bf16 mixed precision where the hardware runs it fast, else fp32 (``bench.hardware``)."""
COMPILE_MODES: tuple[str, ...] = ("auto", "on", "off")
"""``--compile`` of the frozen protocols' feature extraction: by ``bench.frozen.compiled``'s measured rule,
always, never."""

_P = TypeVar("_P", bound="ProtocolSettings")


def without_default_decode(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without ``decode`` where it is ``pil``: records written before the field existed
    decoded with PIL, and keep their config hash (and a feature cache its key)."""
    if data.get("decode") == "pil":
        del data["decode"]
    return data


class ProtocolSettings:
    """The base of every protocol's settings dataclass: the ``voc`` configs each builds from its
    fields, and copies with explicit flags applied. Settings without augmentation fields (the frozen
    protocols') set ``hflip``/``rotation``/``augment``/``randaugment``/``erasing`` as class constants."""

    def check_precision_and_decode(self) -> None:
        """ValueError naming the valid values for an unknown ``precision`` or ``decode``."""
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid values are {list(PRECISIONS)}")
        if self.decode not in DECODERS:
            raise ValueError(f"unknown decode {self.decode!r}; valid values are {list(DECODERS)}")

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
            decode=self.decode,
            **{f.name: getattr(self, f.name) for f in fields(AugmentConfig)},
        )

    def with_overrides(self: _P, **overrides: Any) -> _P:
        """A copy with the non-``None`` ``overrides`` applied (explicit flags win over defaults)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown protocol fields {unknown}; valid fields are {sorted(known)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Protocol(ProtocolSettings, TrainConfig, AugmentConfig):
    """Everything that decides how a backbone is trained and evaluated (stored with each result).

    The optimisation settings are ``voc.config.TrainConfig``'s fields and the augmentation's
    ``voc.config.AugmentConfig``'s, inherited, so each is declared once, with its help text, there;
    the fields declared here are the data, the view and the loop. Every field is applied: the labels
    and transforms through :meth:`label_config` and :meth:`transform_config`, the optimisation
    through :meth:`train_config`, which ``voc.module.MultiLabelClassifier`` applies, the loop
    through the Lightning trainer. The defaults are the course project's protocol: Adam at lr 1e-4,
    batch 8, no scheduler, the mean class-wise BCE on crop-max logits, resize 400 → FiveCrop 224,
    flip + ±25° rotation, VOC2012 train → val, difficult objects negative, images without a positive
    label left out, seeded; no head learning-rate multiplier, warmup or EMA, no RandAugment or
    random erasing, the raw model reported.
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
    resize: int = 400
    crop: int = 224
    crop_mode: str = "five"
    difficult: str = "negative"
    label_source: str = "annotations"
    positive_only: bool = True
    precision: str = "auto"
    seed: int = 0
    limit_train_batches: float | None = None
    limit_eval_batches: float | None = None
    decode: str = "pil"
    """How JPEGs are decoded (``voc.config.DECODERS``); left out of :meth:`to_dict` while ``pil``."""

    RECORD_FIELDS: ClassVar[tuple[str, ...]] = (
        "name", "year", "train_split", "eval_split", "epochs", "batch_size", "eval_batch_size", "lr", "optimizer",
        "weight_decay", "resize", "crop", "crop_mode", "hflip", "rotation", "difficult", "label_source",
        "positive_only", "precision", "seed", "limit_train_batches", "limit_eval_batches", "head_lr_mult",
        "scheduler", "warmup", "schedule_scale", "ema_decay", "ema_warmup", "report_model", "loss",
        "asl_gamma_neg", "asl_gamma_pos", "asl_clip", "augment", "randaugment", "erasing", "decode",
    )
    """The record format's ``config``: the fields every record lists (but :attr:`RECIPE_FIELDS` and
    ``decode``, below), in this order. A field declared since (in ``TrainConfig``, ``AugmentConfig`` or
    here) follows them, and only where it differs from its default, so the config hash of every record
    written before it stays what it was; adding a field never changes this tuple."""

    RECIPE_FIELDS: ClassVar[tuple[str, ...]] = (
        "head_lr_mult", "scheduler", "warmup", "schedule_scale", "ema_decay", "ema_warmup", "report_model",
        "loss", "asl_gamma_neg", "asl_gamma_pos", "asl_clip", "augment", "randaugment", "erasing",
    )
    """Fields added after records were committed: where all of them have their defaults (the course's
    behaviour), :meth:`to_dict` leaves them out, so such a record, and its config hash, are what they
    were before these fields existed; otherwise it lists every one."""

    def __post_init__(self) -> None:
        self.check_precision_and_decode()
        self.train_config()  # every optimisation setting checked (voc.config.TrainConfig)

    def train_config(self) -> TrainConfig:
        """How the protocol trains the model (``voc.config.TrainConfig``, applied by ``voc.module``):
        every field of TrainConfig, from this protocol's field of the same name."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})

    def to_dict(self) -> dict[str, Any]:
        """The :attr:`RECORD_FIELDS` in their order (the :attr:`RECIPE_FIELDS` only where one of them
        differs from its default, ``decode`` only where it is not ``pil``), then every field added
        since that differs from its default."""
        values = asdict(self)
        defaults = {f.name: f.default for f in fields(self)}
        data = {k: values[k] for k in self.RECORD_FIELDS}
        if all(data[k] == defaults[k] for k in self.RECIPE_FIELDS):
            data = {k: v for k, v in data.items() if k not in self.RECIPE_FIELDS}
        data.update((k, v) for k, v in values.items() if k not in self.RECORD_FIELDS and v != defaults[k])
        return without_default_decode(data)


def config_hash(*parts: dict[str, Any]) -> str:
    """A short stable hash of JSON-able dicts (protocol, data), to recognise the same config."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# -- frozen-backbone protocols -----------------------------------------------------------------


def sorted_unique_positive(values: Sequence[float], what: str) -> tuple[float, ...]:
    """``values`` as sorted unique floats; ValueError naming ``what`` unless all are positive and finite."""
    out = tuple(sorted({float(v) for v in values}))
    if not out or any(not (v > 0 and v < float("inf")) for v in out):
        raise ValueError(f"{what} must be positive finite numbers, got {list(values)}")
    return out


SYNTHETIC_SPLITS: dict[str, str] = {"year": "2012", "train_split": "train", "eval_split": "val"}
"""The data fields a frozen protocol changes on the synthetic set (which has train and val):
everything else, the 224 x 224 view included, as on real VOC."""


@dataclass(frozen=True)
class FrozenProtocol(ProtocolSettings):
    """What every frozen-backbone protocol's settings have: the data, the view and the feature
    extraction. The backbone is frozen (eval mode, no gradients); each image's timm pooled pre-logits
    feature (``forward_head(forward_features(x), pre_logits=True)``, fp32, the mean over the view's
    crops) is computed once and cached; the protocol then scores the eval split from the cached
    features. Each protocol module subclasses this with the fields of its own scoring (``linear``:
    the probe and its cost grid; ``lowshot``: the samples) and sets ``name``'s default.

    Defaults are VISSL's VOC07 benchmark: VOC2007 trainval → test, the whole image resized to
    224 × 224, difficult-only classes ignored in evaluation (they count as negatives when an SVM is
    fitted, as in VISSL's ``svm_trainer.py``, and are never sampled in low-shot), every image kept.
    Every field is applied; :meth:`to_dict` records them all.
    """

    name: str
    """The registered frozen protocol these settings are for (``bench.protocols``)."""
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
    decode: str = "torchvision"
    """How JPEGs are decoded (``voc.config.DECODERS``). ``torchvision`` by default: with no
    augmentation the loader's work is decode, resize and normalise, and one worker delivered the
    224 × 224 view 1.8× faster that way than with PIL (docs/performance.md); left out of
    :meth:`to_dict` where it is ``pil``."""
    seed: int = 0
    """Seeds the protocol's own randomness (CV folds, solvers, samples) and a random-init backbone."""
    hflip: ClassVar[bool] = False
    rotation: ClassVar[float] = 0.0
    augment: ClassVar[str] = "basic"
    randaugment: ClassVar[str] = DEFAULT_RANDAUGMENT
    erasing: ClassVar[float] = 0.0
    crop_scale: ClassVar[float] = 1.0
    """Features are extracted from the view as it is: no augmentation (not fields: nothing to set)."""

    def __post_init__(self) -> None:
        self.check_precision_and_decode()
        if self.seed < 0:
            raise ValueError(f"the seed of a frozen protocol must be non-negative (numpy's seeding), got {self.seed}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        """The record's ``config``: every field (a subclass adds what it resolves, e.g. a default grid)."""
        return without_default_decode(asdict(self))
