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
    """A training recipe's augmentation, each setting declared once here:
    :class:`TransformConfig` applies them, and a protocol that records them inherits them
    (``bench.protocols.settings``).

    Raises ValueError (:meth:`check_augment`) for a ``rotation`` outside [0, 180], an unknown
    ``augment``, a ``randaugment`` that is not a timm config string or is set without
    ``augment="randaugment"``, an ``erasing`` probability outside [0, 1], or a ``crop_scale``
    outside (0, 1].
    """

    hflip: bool = setting(True, "a random horizontal flip of each training image")
    rotation: float = setting(25.0, "a random rotation of each training image by up to this many degrees either way, "
                                    "the corners filled black; 0: none", metavar="DEGREES")
    augment: str = setting("basic", "basic (random flip and rotation) or randaugment (those, then timm's "
                                    "RandAugment)", choices=AUGMENTS)
    randaugment: str = setting(DEFAULT_RANDAUGMENT, "timm's RandAugment config string with augment randaugment, "
                                                    "e.g. rand-m9-mstd0.5", metavar="CONFIG")
    """timm's ``rand_augment_transform`` config string, applied with ``augment="randaugment"``
    (where ``augment`` is ``basic`` it must stay the default: a setting that is not applied)."""
    erasing: float = setting(0.0, "probability of timm's RandomErasing on each training crop")
    """Probability of timm's ``RandomErasing`` (one box per crop, 2-33 % of its area, per-pixel
    normal noise) on each normalised training crop; 0: none."""
    crop_scale: float = setting(1.0, "random resized crop of each resized training image: the smallest share of its "
                                     "area a crop keeps (aspect 3/4 to 4/3), resized back; 1: none")
    """torchvision's ``RandomResizedCrop`` on the resized training image, ``scale=(crop_scale, 1)``
    and ``ratio=(3/4, 4/3)``, the crop resized back to the image's size, before the flip and
    rotation; 1: the whole image (no crop)."""

    def __post_init__(self) -> None:
        self.check_augment()

    def check_augment(self) -> None:
        """ValueError for a setting of this class that cannot be applied (class docstring)."""
        check_choices(self)
        if not 0.0 <= self.rotation <= 180.0:
            raise ValueError(f"rotation is an angle in degrees in [0, 180], got {self.rotation}")
        if not _RANDAUGMENT_STRING.fullmatch(self.randaugment):
            raise ValueError(f"randaugment must be a timm RandAugment string such as {DEFAULT_RANDAUGMENT!r} "
                             f"('rand' then -m<magnitude>, -n<ops>, -mstd<std>, -mmax<max>, -inc<0|1>, -p<prob>), "
                             f"got {self.randaugment!r}")
        if self.augment != "randaugment" and self.randaugment != DEFAULT_RANDAUGMENT:
            raise ValueError(f"randaugment={self.randaugment!r} applies only with augment='randaugment' "
                             f"(augment is {self.augment!r})")
        if not 0.0 <= self.erasing <= 1.0:
            raise ValueError(f"erasing is a probability in [0, 1], got {self.erasing}")
        if not 0.0 < self.crop_scale <= 1.0:
            raise ValueError(f"crop_scale is a share of the image's area in (0, 1], got {self.crop_scale}")


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
HEAD_INITS: tuple[str, ...] = ("random", "zero", "probe")
"""How the classifier's final layer starts: ``random``, timm's initialisation; ``zero``, weights 0
and each class's bias at the log-odds of its training-split frequency (the label prior's scores);
``probe``, a logistic-regression probe fitted on the frozen features of the training split, copied
in (LP-FT, ``bench.train.head``)."""
BATCHNORM_MODES: tuple[str, ...] = ("train", "frozen")
"""``train``: batch norm normalises with each batch's statistics and updates its running ones;
``frozen``: it stays in eval mode while training (the pretrained running statistics are used and
kept bit for bit), its affine weight and bias still trained."""
TTA_MODES: tuple[str, ...] = ("none", "hflip")
"""Test-time augmentation at evaluation: ``none``; ``hflip``, the mean of the logits of each crop
and its mirror image."""
EMA_FORGET_LIMIT = 0.05
"""An EMA is reported only where, at the end of the run, the initial weights make up at most this
share of it (``voc.ema.initial_weight_share``): three time constants of the average at least.
Otherwise the raw model is, whatever ``report_model`` says, and the record says why; both rules are
settled before the first step from the planned number of steps."""


@dataclass(frozen=True)
class TrainConfig:
    """How the model is trained (``voc.module.MultiLabelClassifier`` applies every field but
    ``head_init``, which whoever builds the model applies: ``bench.train.head``).

    The defaults are the course project's: Adam at ``lr`` 1e-4, no weight decay, no schedule, no
    EMA, the mean class-wise BCE, batch norm in training mode, timm's random head. ``weight_decay``
    never applies to biases, norm weights (every parameter of one dimension or fewer) or the
    parameters a timm model lists in ``no_weight_decay()``; ``head_lr_mult`` multiplies the learning
    rate of the classifier's final layer (the model's ``get_classifier()``); ``layer_decay`` below 1
    scales each layer group's rate by timm's ``param_groups_layer_decay``. Every length is a share
    of the run, so a shorter ``--epochs`` keeps a recipe's shape: the schedule spans
    ``schedule_scale`` times the run's optimiser steps (a schedule longer than the training is
    stopped part-way), ``warmup`` is the share of the schedule's steps spent in the linear warmup
    of ``none`` and ``cosine`` or the rising phase of ``onecycle`` (its ``pct_start``), and
    ``ema_horizon`` sets the EMA's time constant to a share of the run's steps. ``ema_decay`` > 0
    (or ``ema_horizon`` > 0) keeps an exponential moving average of the weights (timm's
    ``ModelEmaV3``), updated after every optimiser step, with timm's decay warmup where
    ``ema_warmup``. ``report_model`` names the model whose predictions are reported (an EMA that
    cannot forget its initial weights within the run is not: :data:`EMA_FORGET_LIMIT`). ``asl_*``
    are the asymmetric loss's focusing exponents and probability margin. ``tta`` is applied at
    evaluation.

    Raises ValueError for an unknown choice (listing the valid ones), a value out of its range,
    or a setting that would not be applied (a schedule longer than the run without a schedule, EMA
    warmup or an ``ema`` report without an EMA, ASL settings with another loss, ``onecycle`` without
    warmup, both ``ema_decay`` and ``ema_horizon``).
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
    warmup: float = setting(0.0, "linear warmup, or OneCycle's rising phase, as a share of the schedule's steps "
                                 "(0 to 1): a shorter run keeps the same share", metavar="SHARE")
    schedule_scale: float = setting(1.0, "length of the schedule as a multiple of the run's steps; above 1 the run "
                                         "stops part-way through it, as the ASL recipe's 80-epoch OneCycle stopped "
                                         "after 40 (2)", metavar="FACTOR")
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
    head_init: str = setting("random", "how the classifier's final layer starts: random (timm's), zero (weights 0, "
                                       "biases at the training split's log prior odds) or probe (a logistic-regression "
                                       "probe on the frozen training features, copied in: LP-FT)", choices=HEAD_INITS)
    batchnorm: str = setting("train", "train (batch statistics, running statistics updated) or frozen (running "
                                      "statistics kept, affine parameters trained)", choices=BATCHNORM_MODES)
    layer_decay: float = setting(1.0, "layer-wise learning-rate decay (timm's param_groups_layer_decay): each layer "
                                      "group below the head gets this factor more; 1: none")
    ema_horizon: float = setting(0.0, "an EMA whose time constant is this share of the run's optimiser steps "
                                      "(decay 1 - 1/(share x steps)), in place of a fixed ema_decay; 0: none",
                                 metavar="SHARE")
    tta: str = setting("none", "test-time augmentation at evaluation: none, or hflip (the mean of the logits of "
                               "each crop and its mirror image)", choices=TTA_MODES)

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.lr > 0 or not self.head_lr_mult > 0:
            raise ValueError(f"lr and head_lr_mult must be positive, got {self.lr} and {self.head_lr_mult}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup is a share of the schedule's steps in [0, 1), got {self.warmup}")
        if not self.schedule_scale >= 1.0:
            raise ValueError(f"schedule_scale must be at least 1 (the schedule must not end before the training), "
                             f"got {self.schedule_scale}")
        if self.schedule_scale != 1.0 and self.scheduler == "none":
            raise ValueError(f"schedule_scale={self.schedule_scale:g} needs a scheduler (cosine or onecycle)")
        if self.scheduler == "onecycle" and self.warmup == 0:
            raise ValueError("scheduler 'onecycle' needs warmup > 0: its rising phase (pct_start)")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0: no EMA), got {self.ema_decay}")
        if not 0.0 <= self.ema_horizon <= 1.0:
            raise ValueError(f"ema_horizon is a share of the run's steps in [0, 1] (0: none), got {self.ema_horizon}")
        if self.ema_decay > 0 and self.ema_horizon > 0:
            raise ValueError("give ema_decay (a fixed decay) or ema_horizon (a decay set by the run's length), "
                             "not both")
        if not self.has_ema and (self.ema_warmup or self.report_model == "ema"):
            raise ValueError("ema_warmup and report_model 'ema' need an EMA of the weights: set ema_decay or "
                             "ema_horizon > 0")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"layer_decay must be in (0, 1] (1: none), got {self.layer_decay}")
        defaults = TrainConfig.__dataclass_fields__
        if self.loss != "asl":
            changed = [f for f in ("asl_gamma_neg", "asl_gamma_pos", "asl_clip")
                       if getattr(self, f) != defaults[f].default]
            if changed:
                raise ValueError(f"{changed} apply only with loss 'asl' (loss is {self.loss!r})")
        if self.asl_gamma_neg < 0 or self.asl_gamma_pos < 0 or not 0.0 <= self.asl_clip < 1.0:
            raise ValueError(f"the ASL exponents must be non-negative and its clip in [0, 1), got gamma_neg="
                             f"{self.asl_gamma_neg}, gamma_pos={self.asl_gamma_pos}, clip={self.asl_clip}")

    @property
    def has_ema(self) -> bool:
        """Whether an EMA of the weights is kept (a fixed ``ema_decay`` or an ``ema_horizon``)."""
        return self.ema_decay > 0 or self.ema_horizon > 0

    def ema_decay_for(self, run_steps: int) -> float:
        """The EMA's decay over a run of ``run_steps`` optimiser steps: ``ema_decay``, or with an
        ``ema_horizon`` ``1 - 1 / max(1, ema_horizon * run_steps)``; 0 without an EMA."""
        if self.ema_horizon > 0:
            return 1.0 - 1.0 / max(1.0, self.ema_horizon * run_steps)
        return self.ema_decay
