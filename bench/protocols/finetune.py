"""The fine-tuning protocols, ``course``, ``voc07``, ``modern`` and ``lpft``: recipes of one kind
(:class:`~bench.protocols.settings.Protocol`), each with its values on real VOC and on the synthetic
set declared here, trained by :mod:`bench.train` and reported with no columns or figures of their
own. Torch-free."""

from __future__ import annotations

from dataclasses import replace

from bench.protocols.settings import Protocol
from bench.protocols.spec import FINETUNE, ProtocolSpec

COURSE_PROTOCOL = Protocol()
"""The course project's protocol, for real VOC."""

CPU_SYNTHETIC_PROTOCOL = Protocol(
    epochs=2,
    batch_size=16,
    eval_batch_size=64,
    lr=1e-3,
    resize=112,
    crop=112,
    crop_mode="full",
)
"""The embedded default on the synthetic set, sized so that ``python benchmark.py --models resnet50`` (the
set generated included) finishes within 10 minutes in fp32 on a 2-core CPU without AVX-512, with ResNet-50
well above the label-prior baseline (benchmarks/README.md, "Default command on the synthetic set")."""

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
"""``modern`` for the synthetic set on a 2-core CPU: the view and batch of :data:`CPU_SYNTHETIC_PROTOCOL`
(112 px, batch 16) for 6 epochs, three times the default's, as its warm-up, cosine and EMA need the steps; the
learning rate of training from random init."""

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
"""``lpft`` on the synthetic set (train and val), the view of :data:`CPU_SYNTHETIC_PROTOCOL` (112 px) for
6 epochs as ``modern``'s, the learning rate of training from random init."""


class FinetuneSpec(ProtocolSpec):
    """A named fine-tuning recipe: its settings on real VOC and on the synthetic set."""

    kind = FINETUNE

    def __init__(self, name: str, help: str, real: Protocol, synthetic: Protocol) -> None:
        for settings in (real, synthetic):
            if settings.name != name:
                raise ValueError(f"protocol {name!r} declared with settings named {settings.name!r}")
        self.name = name  # type: ignore[misc]
        self.help = help  # type: ignore[misc]
        self.real, self.synthetic = real, synthetic

    def default(self, synthetic: bool) -> Protocol:
        return self.synthetic if synthetic else self.real


SPECS = (
    FinetuneSpec("course", "fine-tune every backbone under the course project's protocol (Adam 1e-4, batch 8, "
                           "resize 400 -> FiveCrop 224, crop-max logits, class-wise BCE; a CPU-sized variant on the "
                           "synthetic set)", COURSE_PROTOCOL, CPU_SYNTHETIC_PROTOCOL),
    FinetuneSpec("voc07", "fine-tune under the ASL repository's recipe on VOC2007 trainval -> test at 448 x 448 "
                          "(Adam, OneCycle, asymmetric loss, EMA, RandAugment + erasing)", VOC07_PROTOCOL,
                 VOC07_SYNTHETIC_PROTOCOL),
    FinetuneSpec("modern", "fine-tune under one AdamW + warmup/cosine + EMA + RandAugment recipe (a CPU-sized "
                           "variant on the synthetic set)", MODERN_PROTOCOL, CPU_MODERN_PROTOCOL),
    FinetuneSpec("lpft", "linear probe, then fine-tune (LP-FT): a logistic-regression head fitted on the frozen "
                         "training features, copied in, then the whole network fine-tuned with batch-norm statistics "
                         "frozen, AdamW + warmup/cosine, flip-averaged eval", LPFT_PROTOCOL, CPU_LPFT_PROTOCOL),
)
