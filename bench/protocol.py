"""The protocols' settings: frozen configs applied identically to every backbone.

:class:`Protocol` holds a fine-tuning recipe's settings, and :data:`FINETUNE_PROTOCOL_TABLE` names
them (``course``, ``voc07``, ``modern``); :class:`FrozenProtocol` the frozen-feature protocols'
(``linear``, ``lowshot`` and the others), whose scoring and record each protocol's module in
``bench.protocols`` states. The ``voc`` package's config objects (labels, transforms, training) are
built from them (``label_config``, ``transform_config``, ``train_config``). Torch-free: the
command line reads them before deciding whether to load torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, TypeVar

from bench.frozen.recipes import LOWSHOT_K_VALUES, PROBE_RECIPES, PROBES, ProbeRecipe
from bench.protocols import FINETUNE, FROZEN, frozen_spec, names
from voc.config import DECODERS, DEFAULT_RANDAUGMENT, AugmentConfig, LabelConfig, TrainConfig, TransformConfig
from voc.constants import IMAGENET_MEAN, IMAGENET_STD

PRECISIONS: tuple[str, ...] = ("auto", "bf16-mixed", "16-mixed", "32-true")
"""``auto``: bf16 mixed precision where the hardware runs it fast, else fp32 (``bench.hardware``)."""
COMPILE_MODES: tuple[str, ...] = ("auto", "on", "off")
"""``--compile`` of the frozen protocols' feature extraction: by ``bench.frozen.compiled``'s measured rule,
always, never."""

FINETUNE_PROTOCOLS: tuple[str, ...] = names(FINETUNE)
"""Fine-tuning recipes (:class:`Protocol`, :data:`FINETUNE_PROTOCOL_TABLE`): ``course``, the course
project's; ``voc07``, the ASL repository's on VOC2007; ``modern``, AdamW + cosine + EMA + RandAugment."""
FROZEN_PROTOCOLS: tuple[str, ...] = names(FROZEN)
"""The frozen-feature protocols (:class:`FrozenProtocol` settings), each a module of ``bench.protocols``."""
PROTOCOL_NAMES: tuple[str, ...] = names()
"""Every registered protocol (``bench.protocols.MODULES``), in display order."""


_P = TypeVar("_P", bound="_ProtocolMixin")


def without_default_decode(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without ``decode`` where it is ``pil``: records written before the field existed
    decoded with PIL, and keep their config hash (and a feature cache its key)."""
    if data.get("decode") == "pil":
        del data["decode"]
    return data


class _ProtocolMixin:
    """What every protocol dataclass derives the same way from its fields: the ``voc`` configs it
    builds and copies with explicit flags applied. A protocol without augmentation fields (the
    frozen ones) sets ``hflip``/``rotation``/``augment``/``randaugment``/``erasing`` as class constants."""

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
class Protocol(_ProtocolMixin, TrainConfig, AugmentConfig):
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
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid values are {list(PRECISIONS)}")
        if self.decode not in DECODERS:
            raise ValueError(f"unknown decode {self.decode!r}; valid values are {list(DECODERS)}")
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

VOC07_PROTOCOL = Protocol(
    # The multi-label papers' VOC2007 setting with the training recipe of the ASL repository,
    # Alibaba-MIIL/ASL, train.py (train_multi_label_coco; written for MS-COCO, which the ASL paper
    # follows on VOC2007 too). Each value names its source; deviations say why.
    name="voc07",
    year="2007",  # VOC2007 trainval -> test, the split every multi-label VOC paper reports
    train_split="trainval",
    eval_split="test",
    difficult="ignore",  # the VOC devkit's scoring: a class whose only objects are difficult is left out
    positive_only=False,  # every image of the split, as the devkit scores it
    resize=448,  # train.py: transforms.Resize((image_size, image_size)), 448 in the paper and its help text
    crop=448,
    crop_mode="full",  # the whole image resized to 448 x 448, aspect ratio not kept (no crop)
    batch_size=128,  # train.py: --batch-size default 128
    eval_batch_size=128,  # train.py: the val loader uses the same batch size
    optimizer="adam",  # train.py: torch.optim.Adam(params=parameters, lr=lr, weight_decay=0)
    lr=1e-4,  # train.py: --lr default 1e-4, OneCycleLR's max_lr
    weight_decay=1e-4,  # train.py: weight_decay = 1e-4 through add_weight_decay (helper_functions.py), per group
    # on all but biases and 1-D parameters ("true wd, filter_bias_and_bn"); timm's
    # param_groups_weight_decay makes the same split
    scheduler="onecycle",  # train.py: lr_scheduler.OneCycleLR(optimizer, max_lr=lr, steps_per_epoch, epochs=Epochs,
    warmup=0.2,  # pct_start=0.2): the rising phase is 0.2 of the schedule, whatever its length
    schedule_scale=2.0,  # train.py: Epochs = 80, the length of the OneCycle schedule, stopped at Stop_epoch = 40:
    epochs=40,  # the run is the first half of its schedule (train.py breaks when epoch > 40, so it runs epochs
    # 0-40, 41 in all; we train the 40 the paper and the comment state). A shorter --epochs keeps both shares
    ema_decay=0.9997,  # train.py: ModelEma(model, 0.9997), updated after every step (helper_functions.py ModelEma:
    ema_warmup=False,  # decay * ema + (1 - decay) * weights over the whole state_dict, no warmup)
    report_model="raw",  # train.py reports max(raw mAP, EMA mAP) on the eval set each epoch; we declare one model
    # before training. Its decay suits MS-COCO's 641 steps an epoch (its comment: "0.9997^641=0.82"); VOC2007
    # trainval at batch 128 has 40, 1,600 in 40 epochs, after which 0.9997^1600 = 0.62 of the EMA is still the
    # initial weights. So the raw model is reported; the EMA is evaluated and recorded beside it.
    loss="asl",  # train.py: AsymmetricLoss(gamma_neg=4, gamma_pos=0, clip=0.05,
    asl_gamma_neg=4.0,  # disable_torch_grad_focal_loss=True) of src/loss_functions/losses.py (voc.losses)
    asl_gamma_pos=0.0,
    asl_clip=0.05,
    hflip=False,  # train.py's training transform has no flip and no rotation:
    rotation=0.0,  # Resize, CutoutPIL(cutout_factor=0.5), RandAugment(), ToTensor
    augment="randaugment",  # train.py: RandAugment() of the `randaugment` pip package, at its defaults; here timm's
    randaugment="rand-m9-mstd0.5",  # RandAugment (2 ops, magnitude 9 +- 0.5): that package is not a dependency
    erasing=1.0,  # train.py: CutoutPIL(cutout_factor=0.5) on every image (helper_functions.py: one random-colour
    # box of half each side, clipped at the border, 19 % of the image on average); here timm's RandomErasing on
    # every image: one box of a uniformly drawn 2-33 % of it, filled with per-pixel noise
    precision="auto",  # train.py trains under fp16 autocast with a GradScaler; ours: bf16 where fast, else fp32
)
"""The ``voc07`` protocol on real VOC: VOC2007 trainval -> test under the ASL repository's recipe."""

VOC07_SYNTHETIC_PROTOCOL = replace(VOC07_PROTOCOL, year="2012", train_split="train", eval_split="val")
"""``voc07`` on the synthetic set (which has train and val): the same recipe and 448 px view, not
sized down (hours per model on a CPU; it exists to run the recipe end to end, not to rank)."""

MODERN_PROTOCOL = Protocol(
    # One recipe for every family, after the fine-tuning recipes timm and ConvNeXt/DeiT use: AdamW,
    # warmup then cosine, weight decay 0.05 (not on biases and norms), an EMA with timm's warmup, and
    # RandAugment + RandomErasing. Data as the course protocol (VOC2012 train -> val); the view is
    # the whole image at 224 x 224, the input size most backbones were pretrained at.
    name="modern",
    resize=224,
    crop=224,
    crop_mode="full",
    batch_size=32,
    eval_batch_size=64,
    epochs=20,
    optimizer="adamw",
    lr=1e-4,
    weight_decay=0.05,
    scheduler="cosine",
    warmup=0.05,  # one epoch of the recipe's 20, kept as that share of any shorter run
    head_init="zero",  # ConvNeXt's fine-tuning starts its new head near zero (--head_init_scale 0.001); the
    # biases at the classes' log prior odds (the prior-probability init of Lin et al., "Focal Loss", ICCV 2017),
    # so the first steps do not spend themselves pulling 20 sigmoid outputs down from 0.5
    ema_decay=0.9998,  # timm train.py's --model-ema-decay default
    ema_warmup=True,  # timm train.py's --model-ema-warmup: the average follows early training closely
    report_model="ema",
    hflip=True,
    rotation=0.0,  # RandAugment rotates (up to 30 degrees at magnitude 10)
    augment="randaugment",
    randaugment="rand-m9-mstd0.5-inc1-mmax9",  # timm's --aa of the DeiT and ConvNeXt recipes, the magnitude
    # capped at 9 (mmax9): at 10 timm's increasing posterize keeps 0 bits, which Pillow >= 11 refuses (ValueError
    # in about 1 image in 500 with mstd0.5); at 9 it keeps 1
    erasing=0.25,  # timm's --reprob of those recipes
)
"""The ``modern`` protocol on real VOC."""

CPU_MODERN_PROTOCOL = replace(
    MODERN_PROTOCOL,
    epochs=6,
    batch_size=16,
    lr=2e-3,
    resize=112,
    crop=112,
)
"""``modern`` sized like :data:`CPU_SYNTHETIC_PROTOCOL` for the synthetic set on a 2-core CPU (112 px,
batch 16, 6 epochs: the same work per model), with the learning rate of training from random init."""

LPFT_PROTOCOL = Protocol(
    # LP-FT (Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution",
    # ICLR 2022): a linear probe on the frozen features first, copied into the head, then the whole network
    # fine-tuned from there. Data and labels as the multi-label papers' VOC2007 setting (voc07, ASL's train.py).
    name="lpft",
    year="2007",
    train_split="trainval",
    eval_split="test",
    difficult="ignore",
    positive_only=False,
    resize=384,  # the whole image, as ASL's 448 x 448; 384 the best view of the stage-1 probe's 3-fold CV mAP on
    crop=384,  # the training split (benchmarks/2026-12-07-lpft-choices/), and about a quarter fewer pixels than 448
    crop_mode="full",
    batch_size=16,  # what a 2-core CPU and one 16 GB GPU both hold at 384 px for these backbones
    eval_batch_size=32,
    epochs=10,
    optimizer="adamw",
    lr=1e-4,  # ASL train.py's peak learning rate (Adam, 1e-4) for whole-network fine-tuning from ImageNet weights
    weight_decay=0.01,  # AdamW's default decoupled weight decay (torch, timm), off biases and norms
    scheduler="cosine",
    warmup=0.05,  # modern's share: a short linear warm-up, as the head starts fitted, not random
    head_init="probe",  # stage 1 (bench/train/head.py): logistic regression per class, C by 3-fold CV on the
    # training split, scaler folded into the weights
    batchnorm="frozen",  # batch 16 gives noisy batch statistics; the ImageNet running statistics are kept (as
    # detection fine-tuning freezes BatchNorm at small batches), the affine parameters still train
    hflip=True,
    rotation=0.0,  # multi-label labels survive a flip; rotation's black corners and crops can cut objects out
    tta="hflip",  # declared before training: the mean of the logits of the image and its mirror image
)
"""The ``lpft`` protocol on real VOC."""

CPU_LPFT_PROTOCOL = replace(
    LPFT_PROTOCOL, year="2012", train_split="train", eval_split="val", positive_only=True, difficult="negative",
    resize=112, crop=112, epochs=6, lr=1e-3,
)
"""``lpft`` on the synthetic set (train and val), sized like :data:`CPU_SYNTHETIC_PROTOCOL`: 112 px,
6 epochs, the learning rate of training from random init."""

FINETUNE_PROTOCOL_TABLE: dict[str, tuple[Protocol, Protocol]] = {
    "course": (COURSE_PROTOCOL, CPU_SYNTHETIC_PROTOCOL),
    "voc07": (VOC07_PROTOCOL, VOC07_SYNTHETIC_PROTOCOL),
    "modern": (MODERN_PROTOCOL, CPU_MODERN_PROTOCOL),
    "lpft": (LPFT_PROTOCOL, CPU_LPFT_PROTOCOL),
}
"""The named fine-tuning protocols: ``name -> (on real VOC, on the synthetic set)``."""


def finetune_protocol(name: str, synthetic: bool) -> Protocol:
    """The named fine-tuning protocol for real VOC or the synthetic set (:data:`FINETUNE_PROTOCOL_TABLE`)."""
    try:
        return FINETUNE_PROTOCOL_TABLE[name][int(synthetic)]
    except KeyError:
        raise ValueError(
            f"unknown fine-tuning protocol {name!r}; valid values are {list(FINETUNE_PROTOCOLS)}"
        ) from None


def config_hash(*parts: dict[str, Any]) -> str:
    """A short stable hash of JSON-able dicts (protocol, data), to recognise the same config."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# -- frozen-backbone protocols -----------------------------------------------------------------


def _sorted_unique_positive(values: Sequence[float], what: str) -> tuple[float, ...]:
    out = tuple(sorted({float(v) for v in values}))
    if not out or any(not (v > 0 and v < float("inf")) for v in out):
        raise ValueError(f"{what} must be positive finite numbers, got {list(values)}")
    return out


@dataclass(frozen=True)
class FrozenProtocol(_ProtocolMixin):
    """A frozen-backbone protocol's settings: features once per image, then the protocol's scoring
    (``bench.protocols``: its module states what it applies and records).

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
    decode: str = "torchvision"
    """How JPEGs are decoded (``voc.config.DECODERS``). ``torchvision`` by default: with no
    augmentation the loader's work is decode, resize and normalise, and one worker delivered the
    224 × 224 view 1.8× faster that way than with PIL (docs/performance.md); left out of
    :meth:`to_dict` where it is ``pil``."""
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
    augment: ClassVar[str] = "basic"
    randaugment: ClassVar[str] = DEFAULT_RANDAUGMENT
    erasing: ClassVar[float] = 0.0
    crop_scale: ClassVar[float] = 1.0
    """Features are extracted from the view as it is: no augmentation (not fields: nothing to set)."""

    def __post_init__(self) -> None:
        frozen_spec(self.name)  # a registered frozen protocol, else ValueError naming the valid ones
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid values are {list(PRECISIONS)}")
        if self.decode not in DECODERS:
            raise ValueError(f"unknown decode {self.decode!r}; valid values are {list(DECODERS)}")
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
        """The record's ``config``: the fields this protocol applies (its module's ``config_dict`` of
        every field, the resolved cost grid and the probe recipe)."""
        data = asdict(self)
        data["costs"] = list(self.cost_grid)
        data["k_values"] = list(self.k_values)
        data["recipe"] = self.recipe.to_dict()
        return without_default_decode(frozen_spec(self.name).config_dict(self, data))


LINEAR_PROTOCOL = FrozenProtocol()
"""VISSL's VOC07 linear benchmark (real VOC): VOC2007 trainval → test, 224 × 224 whole image, SVM."""
LINEAR_SYNTHETIC_PROTOCOL = FrozenProtocol(year="2012", train_split="train", eval_split="val")
"""The frozen protocols on the synthetic set (which has train and val): everything else as on real
VOC, the 224 × 224 view included."""


def frozen_protocol(name: str, synthetic: bool) -> FrozenProtocol:
    """The default settings of the frozen protocol ``name`` for real VOC or the synthetic set
    (``bench.protocols``: each protocol's ``default``)."""
    return frozen_spec(name).default(synthetic)
