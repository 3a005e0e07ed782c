"""The flag groups the run and ``speed`` share: which protocol, models and data; the data and view;
the fine-tuning recipe; the frozen protocols' settings; the machine. Each group is one function, so a
job's parser is the list of groups it takes (``bench.cli.settings`` turns the values into a protocol).
Torch-free."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import Field
from pathlib import Path
from typing import Any

from bench.cli.common import devices, limit
from bench.data import SYNTHETIC_ROOT
from bench.protocols import FINETUNE, FROZEN, frozen_spec, get_spec, names
from bench.protocols.settings import COMPILE_MODES, PRECISIONS
from bench.protocols.spec import Option, positive_float
from voc.config import CROP_MODES, DECODERS, AugmentConfig, TrainConfig, settings
from voc.constants import DIFFICULT_POLICIES, LABEL_SOURCES, YEARS


def finetune_group() -> str:
    """The title of the fine-tuning flags' group, naming the registered fine-tuning protocols."""
    return f"fine-tuning (--protocol {', '.join(names(FINETUNE))})"


def frozen_group() -> str:
    """The title of the frozen protocols' flags' group, naming the registered frozen protocols."""
    return f"frozen backbone (--protocol {', '.join(names(FROZEN))})"


def _course_values(field: str) -> tuple[Any, Any]:
    """The course protocol's value of ``field`` on real VOC and on the synthetic set (the defaults help shows)."""
    course = get_spec("course")
    return getattr(course.default(False), field), getattr(course.default(True), field)

FlagAdder = Callable[[argparse.ArgumentParser], None]
"""A function that adds a group of flags to a parser or argument group."""


def _default(field: str) -> str:
    course, cpu = _course_values(field)
    if course == cpu:
        return f"default: {course}"
    return f"default: {course} (course protocol, real VOC); {cpu} on the synthetic set"


def add_selection_flags(p: argparse.ArgumentParser) -> None:
    """``--protocol``, ``--models``, ``--data``."""
    p.add_argument("--protocol", choices=names(), default="course",
                   help="; ".join(f"{name}: {get_spec(name).help}" for name in names())
                   + "; explicit flags win over the protocol's values (see docs/protocols.md)")
    p.add_argument("--models", nargs="+", default=["resnet50"], metavar="NAME",
                   help="timm model names (optionally with a pretrained tag, e.g. resnet50.a1_in1k) or fnmatch "
                        "wildcards over timm.list_models, e.g. 'efficientnet_b*' (quote them)")
    p.add_argument("--data", default="auto", metavar="{auto,synthetic,PATH}",
                   help="auto: real VOC at ./data/VOCdevkit or $VOC_ROOT, else the synthetic set "
                        f"({SYNTHETIC_ROOT}, generated once); synthetic; or the path of a VOC tree (the folder "
                        "holding VOCdevkit, VOCdevkit itself, or VOC<year>)")


VIEW_OPTIONS: tuple[Option, ...] = (
    Option("year", choices=YEARS, help="VOC year"),
    Option("train_split", help="split to train on"),
    Option("eval_split", help="split to evaluate on"),
    Option("resize", type=int, help="shortest image edge after resizing, px"),
    Option("crop", type=int, help="crop size, px"),
    Option("crops", field="crop_mode", choices=CROP_MODES,
           help="crop mode: five (FiveCrop), ten, center, or full (whole image at resize x resize)"),
    Option("difficult", choices=DIFFICULT_POLICIES,
           help="label of an image whose only objects of a class are difficult"),
    Option("label_source", choices=LABEL_SOURCES,
           help="annotations: labels from Annotations/<id>.xml; imagesets: from the per-class "
                "ImageSets/Main/<class>_<split>.txt lists only, e.g. the official VOC2007 test lists"),
    Option("precision", choices=PRECISIONS,
           help="auto: bf16 mixed precision where the hardware runs it fast (CUDA with bf16, CPUs with "
                "AVX512-BF16/AMX), else fp32"),
    Option("decode", choices=DECODERS,
           help="pil: decode JPEGs with PIL (at a reduced scale where that covers the size needed) and transform PIL "
                "images; torchvision: torchvision.io.decode_image (libjpeg-turbo) and transforms on uint8 tensors; "
                "device: the workers only read the files, and each eval or feature-extraction batch is decoded in one "
                "call on the compute device (nvJPEG on a GPU) and resized there (training images as torchvision), "
                "meant for GPUs (on a 2-core CPU it measured as torchvision); see docs/performance.md (default: "
                "torchvision for the frozen protocols, whose view one worker decoded 1.8x faster that way; pil for "
                "fine-tuning, as its committed records)"),
    Option("seed", type=int, help="random seed"),
)
"""The data, label, view and run flags every protocol takes, each setting the settings field of its
``target`` (``bench.cli.settings`` applies them; a help without its own default states the course's)."""
EVAL_BATCH_OPTION = Option("eval_batch_size", type=int,
                           help="evaluation batch size (a frozen protocol's feature-extraction batch)")
"""Sets ``eval_batch_size`` of a fine-tuning protocol and ``batch_size`` of a frozen one."""
FINETUNE_LOOP_OPTIONS: tuple[Option, ...] = (
    Option("epochs", type=int, help="training epochs"),
    Option("batch_size", type=int, help="training batch size, images"),
    Option("limit_train_batches", type=limit,
           help="train on this many batches per epoch (int) or this fraction (float) (default: all)"),
    Option("limit_eval_batches", type=limit,
           help="evaluate on this many batches (int) or fraction (float) (default: all)"),
)
"""The fine-tuning loop's flags (the recipe's are :func:`recipe_fields`)."""


def add_option(p: argparse.ArgumentParser, option: Option) -> None:
    """``option``'s flag, its help ending in the course protocol's default where it states none."""
    shown = "" if "(default" in option.help else f" ({_default(option.target)})"
    p.add_argument(option.flag, help=option.help + shown, **option.argparse_kwargs())


def add_view_flags(p: argparse.ArgumentParser) -> None:
    """The data and the view every protocol has: year, splits, labels, image pipeline, precision, seed."""
    g = p.add_argument_group("data and view (every protocol)")
    for option in VIEW_OPTIONS[:3]:
        add_option(g, option)
    add_option(g, EVAL_BATCH_OPTION)
    for option in VIEW_OPTIONS[3:]:
        add_option(g, option)


LOADER_OPTIONS: tuple[Option, ...] = (
    Option("accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu"),
    Option("num_workers", type=int,
           help="DataLoader workers (default: chosen from the machine's cores; the frozen protocols on the CPU "
                "decode in the main process instead, see --loader-threads)"),
    Option("skip_bad_images", action="store_true", default=False,
           help="leave out images that are missing or do not decode (found by the up-front check) instead of "
                "stopping; they are listed on the console and in each result.json"),
    Option("cache_dir", type=Path,
           help="decode each split's images once, resized, into a memory-mapped cache in this folder and read that "
                "in later epochs (default: decode JPEGs every epoch)"),
)
"""Where the work runs and how images are loaded (every protocol), each setting the field of its name in
``bench.train.experiment.TrainerOptions`` or ``bench.frozen.runner.FrozenOptions`` where that has one."""
TRAINER_OPTIONS: tuple[Option, ...] = (
    Option("devices", type=devices, default="auto", help="Lightning devices per node (e.g. 2, or auto)"),
    Option("num_nodes", type=int, default=1, help="number of nodes for multi-node DDP"),
    Option("strategy", default="auto", help="Lightning strategy, e.g. ddp"),
    Option("deterministic", action="store_true", default=False,
           help="use only deterministic algorithms (Lightning's deterministic=True): identical results on GPUs "
                "too, at some speed cost; CPU runs are reproducible without it"),
)
"""Lightning's devices, nodes, strategy and deterministic algorithms (fine-tuning runs; an error with a
frozen protocol, which runs no training)."""
EVAL_EVERY_OPTION = Option(
    "eval_every", type=int, metavar="N",
    help="also evaluate on the eval split every N epochs and log it (logs/metrics.csv; the report draws it): a "
         "learning curve only, the reported model stays the final one (default: never)")
"""A fine-tuning run's learning curve (the run only)."""
FEATURE_CACHE_OPTION = Option(
    "feature_cache", type=Path, metavar="DIR",
    help="frozen protocols: where cached features are kept (default: OUT/.features; delete the folder to clear it)")
"""Where the frozen protocols keep features (the run only)."""
EXTRACTION_OPTIONS: tuple[Option, ...] = (
    Option("loader_threads", type=int, metavar="N",
           help="frozen protocols: threads that decode each extraction batch in the main process between the "
                "model's steps, with no loader workers (default on the CPU: no workers and one thread per core, "
                "measured faster than workers beside the model; see docs/performance.md; --num-workers N > 0 uses "
                "workers instead)"),
    Option("compile", choices=COMPILE_MODES,
           help="frozen protocols: torch.compile the feature extractor (inductor freezing): auto compiles when the "
                "eager extraction, timed on a few batches, would take longer than the measured break-even "
                "(docs/performance.md), on a CPU with AMX, where that was measured, and stays eager elsewhere; on; "
                "off (default: auto). result.json records the choice"),
)
"""How the frozen protocols extract features (the run and ``speed``)."""


def add_declared(p: argparse.ArgumentParser, *options: Option) -> None:
    """The flags of ``options``, each with its own help and default."""
    for option in options:
        p.add_argument(option.flag, help=option.help, **option.argparse_kwargs())


def add_loader_flags(p: argparse.ArgumentParser) -> None:
    """Where the work runs and how images are loaded (:data:`LOADER_OPTIONS`)."""
    add_declared(p.add_argument_group("machine and loading"), *LOADER_OPTIONS)


def add_trainer_flags(p: argparse.ArgumentParser) -> None:
    """Lightning's devices, nodes and strategy, and deterministic algorithms (:data:`TRAINER_OPTIONS`)."""
    add_declared(p.add_argument_group("distributed training (fine-tuning)"), *TRAINER_OPTIONS)


RECIPE_CONFIGS: tuple[type, ...] = (TrainConfig, AugmentConfig)
"""The ``voc`` configs whose fields declared with ``voc.config.setting`` are the fine-tuning recipe's
flags, each ``--<field-name>`` setting the protocol's field of the same name."""
_TYPES: dict[str, Callable[[str], Any] | None] = {"float": float, "int": int, "str": None}
"""A declared field's annotation -> the flag's type (``None``: the string as given)."""


def recipe_fields() -> list[Field]:
    """The fine-tuning recipe's declared fields (:data:`RECIPE_CONFIGS`), in declaration order."""
    return [f for config in RECIPE_CONFIGS for f in settings(config)]


def _recipe_default(name: str) -> str:
    """``default: the protocol's; course: X`` (and the synthetic set's value where it differs)."""
    course, cpu = _course_values(name)
    shown = [f"{v:g}" if isinstance(v, float) else "none" if v is None else str(v) for v in (course, cpu)]
    synthetic = "" if course == cpu else f" ({shown[1]} on the synthetic set)"
    return f"default: the protocol's; course: {shown[0]}{synthetic}"


def add_recipe_flag(p: argparse.ArgumentParser, declared: Field) -> None:
    """``--<name>`` for one declared field: its help, choices, type and metavar; default ``None``, the
    protocol's value."""
    meta = declared.metadata
    kind: dict[str, Any] = {}
    if declared.type == "bool":
        kind["action"] = argparse.BooleanOptionalAction
    elif "choices" in meta:
        kind["choices"] = meta["choices"]
    elif meta.get("positive"):
        kind["type"] = positive_float
    elif _TYPES[declared.type.removesuffix(" | None")] is not None:
        kind["type"] = _TYPES[declared.type.removesuffix(" | None")]
    if "metavar" in meta:
        kind["metavar"] = meta["metavar"]
    p.add_argument("--" + declared.name.replace("_", "-"), default=None,
                   help=f"{meta['help']} ({_recipe_default(declared.name)})", **kind)


def add_finetune_flags(p: argparse.ArgumentParser) -> None:
    """The fine-tuning protocols' loop and recipe (an error with a frozen protocol)."""
    for option in FINETUNE_LOOP_OPTIONS:
        add_option(p, option)
    for declared in recipe_fields():
        add_recipe_flag(p, declared)


def add_eval_every_flag(p: argparse.ArgumentParser) -> None:
    """``--eval-every`` (:data:`EVAL_EVERY_OPTION`)."""
    add_declared(p, EVAL_EVERY_OPTION)


def protocol_options() -> dict[str, list[tuple[str, Option]]]:
    """Every frozen protocol's own flags by argument name: the protocols that declare it, with their
    declarations (``bench.protocols.spec.Option``), in registry order. RuntimeError where two
    declarations of one name differ in more than their help (a protocol module's mistake)."""
    by_dest: dict[str, list[tuple[str, Option]]] = {}
    for name in names(FROZEN):
        for option in frozen_spec(name).options:
            declared = by_dest.setdefault(option.dest, [])
            if declared and declared[0][1].argparse_kwargs() != option.argparse_kwargs():
                raise RuntimeError(f"{option.flag} is declared differently by --protocol {declared[0][0]} and {name} "
                                   "(type, nargs, choices, metavar, default or action): one flag has one "
                                   "meaning")
            declared.append((name, option))
    return by_dest


def add_probe_flags(p: argparse.ArgumentParser) -> None:
    """The frozen protocols' own flags (each declared by its protocol, ``FrozenSpec.options``) and where
    they keep features (the run only)."""
    for declared in protocol_options().values():
        flag, kwargs = declared[0][1].flag, declared[0][1].argparse_kwargs()
        p.add_argument(flag, help="; ".join(f"{name}: {option.help}" for name, option in declared), **kwargs)
    add_declared(p, FEATURE_CACHE_OPTION)


def add_extraction_flags(p: argparse.ArgumentParser) -> None:
    """How the frozen protocols extract features (:data:`EXTRACTION_OPTIONS`)."""
    add_declared(p, *EXTRACTION_OPTIONS)


FINETUNE_FLAGS: tuple[FlagAdder, ...] = (add_finetune_flags, add_eval_every_flag)
"""Every flag only fine-tuning has: an error with a frozen protocol."""
FROZEN_FLAGS: tuple[FlagAdder, ...] = (add_probe_flags, add_extraction_flags)
"""Every flag only the frozen protocols have: an error with a fine-tuning one."""


def given_flags(args: argparse.Namespace, adders: tuple[FlagAdder, ...]) -> list[str]:
    """The flags the ``adders`` declare that ``args`` has away from their defaults, in declaration order
    (each flag is ``--`` and its argument's name with dashes; a test checks it)."""
    p = argparse.ArgumentParser(add_help=False)
    for add in adders:
        add(p)
    defaults = vars(p.parse_args([]))
    return ["--" + name.replace("_", "-") for name, default in defaults.items()
            if getattr(args, name) != default]
