"""The task's settings as frozen, validated values: how images are labelled (:class:`LabelConfig`),
how they are turned into crops (:class:`TransformConfig`) and how the model is trained on them
(:class:`TrainConfig`).

Torch-free (stdlib and ``voc.constants`` only): command lines read and check these before deciding
whether to load torch. ``voc.dataset``, ``voc.transforms``, ``voc.datamodule`` and ``voc.module`` take them.

A training-recipe field is declared once, with :func:`setting`: its default, its help text and, for
a choice, its valid values. The choices are checked here; the benchmark's command line makes a
``--<name>`` flag of every field declared so (``bench.cli.flags``).
"""

from __future__ import annotations

import re
from dataclasses import Field, dataclass, field, fields
from typing import Any

from voc.constants import DIFFICULT_ONLY_LABELS, DIFFICULT_POLICIES, IMAGENET_MEAN, IMAGENET_STD, LABEL_SOURCES

CROP_MODES: tuple[str, ...] = ("five", "ten", "center", "full")
"""``five``: FiveCrop (4 corners + centre); ``ten``: those and their mirror images; ``center``:
the centre crop; ``full``: the whole image resized to ``resize × resize`` (aspect ratio not kept)."""

_CROPS_PER_MODE: dict[str, int] = {"five": 5, "ten": 10, "center": 1, "full": 1}

INTERPOLATION_NAMES: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "lanczos")
"""Resampling filters of the resize step (``voc.transforms.INTERPOLATIONS`` maps them to PIL's)."""

AUGMENTS: tuple[str, ...] = ("basic", "randaugment")
"""``basic``: the random flip and rotation only (the course project's); ``randaugment``: those,
then timm's RandAugment (``TransformConfig.randaugment``) on the resized image."""
DECODERS: tuple[str, ...] = ("pil", "torchvision", "device")
"""How JPEGs become pixels: ``pil``, PIL (decoded at a reduced scale where that covers the target,
resized and augmented as PIL images); ``torchvision``, ``torchvision.io.decode_image`` (libjpeg-turbo)
to a uint8 tensor, resized and augmented as tensors (``torchvision.transforms.v2.functional``;
RandAugment, which timm implements on PIL images, goes through PIL). The two differ in the last bits
of some pixels. ``device``: for the views without randomness (evaluation, feature extraction), the
loader workers only read the files; each batch is decoded in the main process onto the compute
device in one ``torchvision.io.decode_jpeg`` call (nvJPEG on CUDA) and resized, cropped and
normalised there by the ``torchvision`` path's code (on the CPU: the same pixels as ``torchvision``);
training images, which are augmented, are decoded as with ``torchvision``."""
_RANDAUGMENT_STRING = re.compile(r"rand(-((mstd|mmax|inc|m|n|p)\d+(\.\d+)?|t\w+))*")
"""The sections ``timm.data.auto_augment.rand_augment_transform`` parses (it asserts on others)."""
DEFAULT_RANDAUGMENT = "rand-m9-mstd0.5"
"""timm's RandAugment config string: 2 ops per image (timm's default), magnitude 9 of 10, drawn
with a standard deviation of 0.5 around it."""


def setting(default: Any, help: str, *, choices: tuple[str, ...] = (), positive: bool = False,
            metavar: str | None = None) -> Any:
    """A dataclass field with its ``help`` (one phrase, without its default) and, for a choice, its
    valid ``choices`` (checked by :func:`check_choices`); ``positive``: a number that must be above 0;
    ``metavar``: the value's name in help. A command line makes a flag of it (``bench.cli.flags``)."""
    metadata: dict[str, Any] = {"help": help}
    if choices:
        metadata["choices"] = choices
    if positive:
        metadata["positive"] = True
    if metavar:
        metadata["metavar"] = metavar
    return field(default=default, metadata=metadata)


def settings(config: type) -> list[Field]:
    """The fields of dataclass ``config`` declared with :func:`setting`, in declaration order."""
    return [f for f in fields(config) if "help" in f.metadata]


def check_choices(config: object) -> None:
    """ValueError for a field of ``config`` declared with choices whose value is not one of them,
    listing them."""
    for f in fields(config):
        valid, value = f.metadata.get("choices"), getattr(config, f.name)
        if valid and value not in valid:
            raise ValueError(f"Unknown {f.name.replace('_', ' ')} {value!r}. Valid values are {list(valid)}.")


def difficult_only_label(policy: str) -> int:
    """The label of a class whose only objects in an image are difficult, under ``policy``
    (``voc.constants.DIFFICULT_ONLY_LABELS``). Raises ValueError for an unknown policy, listing
    the valid ones."""
    try:
        return DIFFICULT_ONLY_LABELS[policy]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown difficult policy {policy!r}. Valid values are {list(DIFFICULT_POLICIES)}.") from None


def check_label_source(source: str) -> str:
    """``source`` if it is one of ``LABEL_SOURCES``; else ValueError listing them."""
    if source not in LABEL_SOURCES:
        raise ValueError(f"Unknown label source {source!r}. Valid values are {list(LABEL_SOURCES)}.")
    return source


def num_crops(crop_mode: str) -> int:
    """Number of crops ``K`` a crop mode produces per image; ValueError for an unknown mode."""
    return _CROPS_PER_MODE[_check_crop_mode(crop_mode)]


def _check_crop_mode(crop_mode: str) -> str:
    if crop_mode not in CROP_MODES:
        raise ValueError(f"Unknown crop mode {crop_mode!r}. Valid values are {list(CROP_MODES)}.")
    return crop_mode


@dataclass(frozen=True)
class LabelConfig:
    """Which labels a split gets.

    ``source``: ``annotations`` (the XML files) or ``imagesets`` (the per-class ImageSets lists);
    ``difficult``: the label of a class whose only objects in an image are difficult (``negative``
    0, ``ignore`` -1, ``positive`` 1); ``positive_only``: keep only images with a positive label.
    Raises ValueError for an unknown source or policy, listing the valid values.
    """

    source: str = "annotations"
    difficult: str = "negative"
    positive_only: bool = False

    def __post_init__(self) -> None:
        check_label_source(self.source)
        difficult_only_label(self.difficult)


@dataclass(frozen=True)
class AugmentConfig:
    """A training recipe's augmentation beyond flip and rotation, each setting declared once here:
    :class:`TransformConfig` applies them, and a protocol that records them inherits them (``bench.protocol``).

    Raises ValueError (:meth:`check_augment`) for an unknown ``augment``, a ``randaugment`` that is
    not a timm config string or is set without ``augment="randaugment"``, or an ``erasing``
    probability outside [0, 1].
    """

    augment: str = setting("basic", "basic (random flip and rotation) or randaugment (those, then timm's "
                                    "RandAugment)", choices=AUGMENTS)
    randaugment: str = setting(DEFAULT_RANDAUGMENT, "timm's RandAugment config string with augment randaugment, "
                                                    "e.g. rand-m9-mstd0.5", metavar="CONFIG")
    """timm's ``rand_augment_transform`` config string, applied with ``augment="randaugment"``
    (where ``augment`` is ``basic`` it must stay the default: a setting that is not applied)."""
    erasing: float = setting(0.0, "probability of timm's RandomErasing on each training crop")
    """Probability of timm's ``RandomErasing`` (one box per crop, 2-33 % of its area, per-pixel
    normal noise) on each normalised training crop; 0: none."""

    def __post_init__(self) -> None:
        self.check_augment()

    def check_augment(self) -> None:
        """ValueError for a setting of this class that cannot be applied (class docstring)."""
        check_choices(self)
        if not _RANDAUGMENT_STRING.fullmatch(self.randaugment):
            raise ValueError(f"randaugment must be a timm RandAugment string such as {DEFAULT_RANDAUGMENT!r} "
                             f"('rand' then -m<magnitude>, -n<ops>, -mstd<std>, -mmax<max>, -inc<0|1>, -p<prob>), "
                             f"got {self.randaugment!r}")
        if self.augment != "randaugment" and self.randaugment != DEFAULT_RANDAUGMENT:
            raise ValueError(f"randaugment={self.randaugment!r} applies only with augment='randaugment' "
                             f"(augment is {self.augment!r})")
        if not 0.0 <= self.erasing <= 1.0:
            raise ValueError(f"erasing is a probability in [0, 1], got {self.erasing}")


@dataclass(frozen=True)
class TransformConfig(AugmentConfig):
    """The image pipeline: resize the shortest edge to ``resize`` (a ``resize × resize`` square in
    ``full`` mode), augment when training (``hflip``, a random rotation of up to ±``rotation``
    degrees), cut ``crop × crop`` crops by ``crop_mode`` and normalise with ``mean``/``std``
    (per channel, on a 0-1 scale).

    Raises ValueError for an unknown crop mode or interpolation (listing the valid ones), a
    non-positive size, a crop larger than the resized image (except in ``full`` mode, which
    does not crop), or ``mean``/``std`` without 3 values. ``mean`` and ``std`` are stored as
    tuples of floats.
    """

    resize: int = 400
    crop: int = 224
    crop_mode: str = "five"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"
    hflip: bool = True
    rotation: float = 25.0
    decode: str = "pil"
    """The decoder (:data:`DECODERS`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        _check_crop_mode(self.crop_mode)
        if self.interpolation not in INTERPOLATION_NAMES:
            raise ValueError(
                f"Unknown interpolation {self.interpolation!r}. Valid values are {list(INTERPOLATION_NAMES)}."
            )
        if self.resize < 1 or self.crop < 1:
            raise ValueError(f"resize and crop must be positive, got resize={self.resize}, crop={self.crop}")
        if self.crop_mode != "full" and self.crop > self.resize:
            raise ValueError(
                f"crop ({self.crop}) must not exceed resize ({self.resize}): the crops are cut from the resized image"
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values each, got {self.mean} and {self.std}")
        self.check_augment()
        if self.decode not in DECODERS:
            raise ValueError(f"Unknown decode {self.decode!r}. Valid values are {list(DECODERS)}.")

    @property
    def num_crops(self) -> int:
        """Crops per image, ``K`` of the ``[K, 3, H, W]`` a transform returns."""
        return num_crops(self.crop_mode)

    @property
    def input_size(self) -> int:
        """Side of the square crops a model sees: ``resize`` in ``full`` mode, else ``crop``."""
        return self.resize if self.crop_mode == "full" else self.crop


OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
"""``adam``: Adam, its weight decay added to the gradient (L2, as ``torch.optim.Adam`` does);
``adamw``: AdamW (decoupled weight decay); ``sgd``: SGD with Nesterov momentum 0.9."""
SCHEDULERS: tuple[str, ...] = ("none", "cosine", "onecycle")
"""Learning-rate schedules, stepped after every batch (``voc.optim.lr_factor``): ``none``: constant
after the linear warmup; ``cosine``: linear warmup, then a cosine decay to 0; ``onecycle``:
``torch.optim.lr_scheduler.OneCycleLR`` (cosine rise over the warmup, cosine fall to lr / 25e4)."""
LOSSES: tuple[str, ...] = ("bce", "asl")
"""``bce``: the mean class-wise binary cross-entropy; ``asl``: the asymmetric loss of Ridnik et al.
(ICCV 2021), summed (``voc.losses``)."""
REPORT_MODELS: tuple[str, ...] = ("raw", "ema")
"""Which model's predictions a run reports: the trained weights (``raw``) or their exponential
moving average (``ema``). Both are evaluated where there is an EMA; the choice is made before."""


@dataclass(frozen=True)
class TrainConfig:
    """How the model is trained (``voc.module.MultiLabelClassifier`` applies every field).

    The defaults are the course project's: Adam at ``lr`` 1e-4, no weight decay, no schedule, no
    EMA, the mean class-wise BCE. ``weight_decay`` never applies to biases, norm weights (every
    parameter of one dimension or fewer) or the parameters a timm model lists in
    ``no_weight_decay()``; ``head_lr_mult`` multiplies the learning rate of the classifier's final
    layer (the model's ``get_classifier()``). The schedule's length is ``schedule_epochs``
    (``None``: the whole training): a schedule longer than the training is stopped part-way.
    ``warmup_epochs`` (may be fractional) is the linear warmup of ``none`` and ``cosine``, and the
    rising phase of ``onecycle`` (its ``pct_start`` = warmup / schedule length), which needs one.
    ``ema_decay`` > 0 keeps an exponential moving average of the weights (timm's ``ModelEmaV3``),
    updated after every optimiser step, with timm's decay warmup where ``ema_warmup``.
    ``report_model`` names the model whose predictions are reported. ``asl_*`` are the asymmetric
    loss's focusing exponents and probability margin.

    Raises ValueError for an unknown choice (listing the valid ones), a value out of its range,
    or a setting that would not be applied (a schedule length without a schedule, EMA warmup or an
    ``ema`` report without an EMA, ASL settings with another loss, ``onecycle`` without warmup).
    """

    lr: float = setting(1e-4, "learning rate, the peak under a schedule")
    optimizer: str = setting("adam", "adam (weight decay as L2 on the gradient), adamw (decoupled) or sgd (Nesterov "
                                     "momentum 0.9)", choices=OPTIMIZERS)
    weight_decay: float = setting(0.0, "weight decay; never on biases, norm weights or a timm model's "
                                       "no_weight_decay() parameters")
    head_lr_mult: float = setting(1.0, "learning rate of the classifier's final layer as a multiple of lr",
                                  positive=True)
    scheduler: str = setting("none", "learning-rate schedule, stepped every batch: none (constant after any "
                                     "warmup), cosine (linear warmup, cosine to 0) or onecycle (torch's OneCycleLR, "
                                     "its rise the warmup)", choices=SCHEDULERS)
    warmup_epochs: float = setting(0.0, "linear warmup, or OneCycle's rising phase, in epochs (may be fractional)")
    schedule_epochs: int | None = setting(None, "length of the schedule in epochs when it should run past the "
                                                "training and be stopped there, as the ASL recipe's 80-epoch "
                                                "OneCycle stopped after 40; none: the training's epochs")
    ema_decay: float = setting(0.0, "keep an exponential moving average of the weights with this decay, evaluated "
                                    "and recorded beside the raw model; 0: none")
    ema_warmup: bool = setting(False, "timm's EMA decay warmup, min(decay, 1 - step^(-2/3))")
    report_model: str = setting("raw", "whose predictions the record reports, declared before training: raw or "
                                       "ema", choices=REPORT_MODELS)
    loss: str = setting("bce", "bce (mean class-wise binary cross-entropy) or asl (asymmetric loss, summed)",
                        choices=LOSSES)
    asl_gamma_neg: float = setting(4.0, "ASL's focusing exponent on negatives")
    asl_gamma_pos: float = setting(0.0, "ASL's focusing exponent on positives")
    asl_clip: float = setting(0.05, "ASL's probability margin on negatives")

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.lr > 0 or not self.head_lr_mult > 0:
            raise ValueError(f"lr and head_lr_mult must be positive, got {self.lr} and {self.head_lr_mult}")
        if not self.weight_decay >= 0 or not self.warmup_epochs >= 0:
            raise ValueError(f"weight_decay and warmup_epochs must be non-negative, got {self.weight_decay} and "
                             f"{self.warmup_epochs}")
        if self.schedule_epochs is not None:
            if self.scheduler == "none":
                raise ValueError(f"schedule_epochs={self.schedule_epochs} needs a scheduler (cosine or onecycle)")
            if self.schedule_epochs < 1:
                raise ValueError(f"schedule_epochs must be at least 1, got {self.schedule_epochs}")
        if self.scheduler == "onecycle" and self.warmup_epochs == 0:
            raise ValueError("scheduler 'onecycle' needs warmup_epochs > 0: its rising phase (pct_start)")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0: no EMA), got {self.ema_decay}")
        if self.ema_decay == 0.0 and (self.ema_warmup or self.report_model == "ema"):
            raise ValueError("ema_warmup and report_model 'ema' need an EMA of the weights: set ema_decay > 0")
        defaults = TrainConfig.__dataclass_fields__
        if self.loss != "asl":
            changed = [f for f in ("asl_gamma_neg", "asl_gamma_pos", "asl_clip")
                       if getattr(self, f) != defaults[f].default]
            if changed:
                raise ValueError(f"{changed} apply only with loss 'asl' (loss is {self.loss!r})")
        if self.asl_gamma_neg < 0 or self.asl_gamma_pos < 0 or not 0.0 <= self.asl_clip < 1.0:
            raise ValueError(f"the ASL exponents must be non-negative and its clip in [0, 1), got gamma_neg="
                             f"{self.asl_gamma_neg}, gamma_pos={self.asl_gamma_pos}, clip={self.asl_clip}")

    def schedule_length(self, epochs: int) -> int:
        """Epochs the learning-rate schedule spans when training runs ``epochs``."""
        return self.schedule_epochs if self.schedule_epochs is not None else epochs
