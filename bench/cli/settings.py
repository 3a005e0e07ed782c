"""What the protocol flags give: the :class:`~bench.protocols.settings.Protocol` or
:class:`~bench.protocols.settings.FrozenProtocol` with every explicit flag applied, the options of the trainer
and of feature extraction, and the flags of one kind of protocol given with the other (UsageError).
Torch-free until a function that runs something is called."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from bench.cli.common import UsageError
from bench.cli.flags import (
    EVAL_BATCH_OPTION,
    EVAL_EVERY_OPTION,
    EXTRACTION_OPTIONS,
    FEATURE_CACHE_OPTION,
    FINETUNE_FLAGS,
    FINETUNE_LOOP_OPTIONS,
    FROZEN_FLAGS,
    LOADER_OPTIONS,
    TRAINER_OPTIONS,
    VIEW_OPTIONS,
    add_trainer_flags,
    given_flags,
    protocol_options,
    recipe_fields,
)
from bench.data import DataSource
from bench.protocols import FROZEN, frozen_spec, get_spec, names
from bench.protocols.settings import FrozenProtocol, Protocol
from bench.protocols.spec import Option
from voc.config import DEFAULT_RANDAUGMENT


def _either(names: list[str] | tuple[str, ...]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join(filter(None, (", ".join(names[:-1]), names[-1])))


def is_frozen(args: argparse.Namespace) -> bool:
    """Whether ``--protocol`` is a frozen-feature protocol (its spec's kind)."""
    return get_spec(args.protocol).kind == FROZEN


def _taking(dest: str) -> list[str]:
    """The frozen protocols that take the flag of argument ``dest``: those declaring it where it is a
    protocol's own (``bench.cli.flags.protocol_options``), else every frozen protocol."""
    declared = protocol_options().get(dest)
    return [name for name, _ in declared] if declared else list(names(FROZEN))


def _own_values(args: argparse.Namespace) -> dict[str, Any]:
    """The values of every frozen protocol's own flags (``None``: not given)."""
    return {dest: getattr(args, dest) for dest in protocol_options()}


def check_protocol_flags(args: argparse.Namespace) -> None:
    """Flags of one kind of protocol given with the other, and the frozen protocols' own values."""
    if not is_frozen(args):
        given = given_flags(args, FROZEN_FLAGS)
        if given:
            takers = [name for name in names(FROZEN)
                      if all(name in _taking(flag[2:].replace("-", "_")) for flag in given)]
            raise UsageError(f"{', '.join(given)}: only for --protocol {_either(takers)} (this run fine-tunes)")
        return
    what = f"--protocol {args.protocol}"
    given = given_flags(args, FINETUNE_FLAGS)
    if given:
        raise UsageError(
            f"{', '.join(given)}: {what} trains no backbone, so there is nothing to set; "
            "--eval-batch-size sets the feature-extraction batch"
        )


def check_frozen_trainer(args: argparse.Namespace) -> None:
    """The trainer's flags (:data:`~bench.cli.flags.TRAINER_OPTIONS`), which a frozen protocol has no use for
    (after :func:`check_protocol_flags`)."""
    if not is_frozen(args):
        return
    given = given_flags(args, (add_trainer_flags,))
    if given:
        raise UsageError(f"{', '.join(given)}: --protocol {args.protocol} runs no training; it extracts features "
                         "once, in one process, and caches them")


def check_frozen_values(args: argparse.Namespace) -> None:
    """The frozen protocols' values that cannot run (after :func:`check_protocol_flags`)."""
    if not is_frozen(args):
        return
    what = f"--protocol {args.protocol}"
    negative = [seed for seed in [args.seed, *(args.seeds or [])] if seed is not None and seed < 0]
    if negative:
        raise UsageError(f"--seed/--seeds: {what} seeds numpy's generators, which take no negative seed {negative}")
    if args.loader_threads is not None and (args.loader_threads < 1 or (args.num_workers or 0) > 0):
        raise UsageError(f"--loader-threads {args.loader_threads}: give a count >= 1, without --num-workers or with "
                         "--num-workers 0 (the threads make the batches in the main process, in place of workers)")
    if args.n_jobs is not None and (args.n_jobs == 0 or args.n_jobs < -1):
        raise UsageError(f"--n-jobs: give -1 (every core) or a positive number of processes, not {args.n_jobs}")
    spec = frozen_spec(args.protocol)
    own = {option.dest for option in spec.options}
    for dest, value in _own_values(args).items():
        if value is not None and dest not in own:
            raise UsageError(f"{_flag(dest)}: only for --protocol {_either(_taking(dest))}, not {what}")
    try:
        spec.overrides(_own_values(args))
    except ValueError as err:  # a combination the protocol cannot run; the message names the flag
        raise UsageError(str(err)) from None
    frozen_protocol_from_args(args, DataSource(root=Path(".")))  # bad values stop here, before any data work


def check_cache_dir(args: argparse.Namespace) -> None:
    if args.cache_dir is not None and args.decode not in (None, "pil"):
        raise UsageError("--cache-dir stores images decoded and resized by PIL, so it does not combine with "
                         f"--decode {args.decode}: drop one of the two")


VIEW_FIELDS: dict[str, str] = {option.target: option.dest for option in VIEW_OPTIONS}
"""The data, label, view and run flags every protocol takes: settings field -> argument name."""
FINETUNE_LOOP_FIELDS: dict[str, str] = {
    **{option.target: option.dest for option in FINETUNE_LOOP_OPTIONS}, "eval_batch_size": EVAL_BATCH_OPTION.dest,
}
"""The fine-tuning loop's flags: settings field -> argument name (the recipe's are ``recipe_fields``)."""
FROZEN_LOOP_FIELDS: dict[str, str] = {"batch_size": EVAL_BATCH_OPTION.dest}
"""A frozen protocol's extraction batch is ``--eval-batch-size``."""


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def data_and_view(args: argparse.Namespace) -> dict[str, Any]:
    """The data, label, view and run flags every protocol takes, as protocol fields (``None``: not given)."""
    return {field: getattr(args, dest) for field, dest in VIEW_FIELDS.items()}


def _usage_error(err: ValueError, given: dict[str, str], protocol: str) -> UsageError:
    """``err`` prefixed with the given flags its message names (``given``: field or argument name ->
    flag, of the flags given), else with every given flag, else with ``--protocol``."""
    named = [flag for name, flag in given.items() if re.search(rf"\b{name}\b", str(err))]
    where = ", ".join(dict.fromkeys(named or given.values())) or f"--protocol {protocol}"
    return UsageError(f"{where}: {err}")


def _given(args: argparse.Namespace, fields_to_dests: dict[str, str]) -> dict[str, str]:
    """field -> flag of the flags among ``fields_to_dests`` that ``args`` gives."""
    return {field: _flag(dest) for field, dest in fields_to_dests.items() if getattr(args, dest) is not None}


def protocol_from_args(args: argparse.Namespace, data: DataSource, *, speed: bool = False) -> Protocol:
    """The named protocol (``--protocol``) for the data (its real-VOC variant for ``speed``) with
    every explicit flag applied: the loop and view flags, and every recipe flag to the protocol field
    of its name (``bench.cli.flags.recipe_fields``)."""
    base = get_spec(args.protocol).default(data.is_synthetic and not speed)
    recipe_dests = {f.name: f.name for f in recipe_fields()}
    recipe = {field: getattr(args, dest) for field, dest in recipe_dests.items()}
    if args.augment == "basic" and args.randaugment is None:  # --augment basic drops the protocol's RandAugment
        recipe["randaugment"] = DEFAULT_RANDAUGMENT
    loop = {field: getattr(args, dest) for field, dest in FINETUNE_LOOP_FIELDS.items()}
    try:
        protocol = base.with_overrides(**data_and_view(args), **loop, **recipe)
        protocol.label_config()
        protocol.transform_config()
    except ValueError as err:
        given = _given(args, {**VIEW_FIELDS, **FINETUNE_LOOP_FIELDS, **recipe_dests})
        raise _usage_error(err, given, args.protocol) from None
    return protocol


def frozen_protocol_from_args(args: argparse.Namespace, data: DataSource) -> FrozenProtocol:
    """The data's default settings of the frozen protocol ``--protocol`` with every explicit flag
    applied (its own flags, as its spec's ``overrides`` maps them)."""
    spec = frozen_spec(args.protocol)
    base = spec.default(data.is_synthetic)
    try:
        protocol = base.with_overrides(
            **data_and_view(args),
            **{field: getattr(args, dest) for field, dest in FROZEN_LOOP_FIELDS.items()},
            **spec.overrides(_own_values(args)),
        )
        protocol.label_config()
        protocol.transform_config()
    except ValueError as err:
        own = {option.dest: option.dest for option in spec.options}
        raise _usage_error(err, _given(args, {**VIEW_FIELDS, **FROZEN_LOOP_FIELDS, **own}), args.protocol) from None
    return protocol


def protocol_summary(protocol: Protocol) -> str:
    """One line for the console: name, epochs, optimiser and recipe, batch, image pipeline, precision, seed."""
    p = protocol
    recipe = ""
    if p.weight_decay:
        recipe += f" wd {p.weight_decay:g}"
    if p.head_lr_mult != 1:
        recipe += f" head x{p.head_lr_mult:g}"
    if p.layer_decay != 1:
        recipe += f" layer decay {p.layer_decay:g}"
    if p.scheduler != "none" or p.warmup:
        recipe += f", {p.scheduler} schedule ({p.warmup:.0%} warmup"
        recipe += f", {p.schedule_scale:g}x the run)" if p.schedule_scale != 1 else ")"
    if p.ema_decay:
        recipe += f", EMA {p.ema_decay:g}{' with warmup' if p.ema_warmup else ''}"
    if p.ema_horizon:
        recipe += f", EMA over {p.ema_horizon:.0%} of the run"
    if p.head_init != "random":
        recipe += f", head init {p.head_init}"
    if p.batchnorm != "train":
        recipe += f", batch norm {p.batchnorm}"
    if p.loss != "bce":
        recipe += f", {p.loss} loss"
    if p.augment != "basic" or p.erasing:
        recipe += f", {p.randaugment if p.augment == 'randaugment' else 'basic'} + erasing {p.erasing:g}"
    if p.crop_scale != 1:
        recipe += f", random resized crop >= {p.crop_scale:.0%}"
    if p.tta != "none":
        recipe += f", {p.tta} TTA"
    return (
        f"{p.name}: {p.epochs} epochs, {p.optimizer} lr {p.lr:g}{recipe}, reported model {p.report_model}, "
        f"batch {p.batch_size}, resize {p.resize} -> {p.crop_mode} crop {p.crop}, precision {p.precision}, "
        f"seed {p.seed}"
    )


def frozen_protocol_summary(protocol: FrozenProtocol) -> str:
    """One line for the console: view, how the protocol scores the features (its spec's words),
    precision, seed."""
    p = protocol
    return (
        f"{p.name}: frozen features of resize {p.resize} -> {p.crop_mode} crop {p.crop} (mean over crops), "
        f"{frozen_spec(p.name).describe(p)}, precision {p.precision}, seed {p.seed}"
    )


def planned_run(  # noqa: ANN201 - a bench.api.Plan, lazily imported
    args: argparse.Namespace, protocol: Protocol | FrozenProtocol, data: DataSource, pretrained: str
):
    """``bench.api.plan`` of ``--models`` with ``pretrained`` weights on the data, its errors as
    UsageError: an unknown model, missing weights (a model only a wildcard matched is left out with a
    warning instead), a label setting the data cannot serve, a bad image without
    ``--skip-bad-images``; the images that flag leaves out are listed on stderr."""
    from bench import api
    from bench.weights import WeightsUnavailableError

    try:
        planned = api.plan(protocol, args.models, data, pretrained=pretrained, skip_bad_images=args.skip_bad_images)
    except (ValueError, WeightsUnavailableError) as err:
        raise UsageError(str(err)) from None
    for split, bad in planned.data.skipped.items():
        print(f"--skip-bad-images: {len(bad)} image(s) of {split} left out: {', '.join(sorted(bad))}",
              file=sys.stderr)
    return planned


def _options(args: argparse.Namespace, config: type, options: Iterable[Option]) -> Any:
    """``config`` (a dataclass) with each given flag of ``options`` set on the field it targets, where
    ``config`` has that field; the others keep ``config``'s defaults."""
    known = {f.name for f in fields(config)}
    return config(**{option.target: getattr(args, option.dest) for option in options
                     if option.target in known and getattr(args, option.dest) is not None})


def trainer_options(args: argparse.Namespace):  # noqa: ANN201 - TrainerOptions, lazily imported
    """Where and how Lightning runs a fine-tuning protocol (``bench.train.experiment.TrainerOptions``), from
    the loader and trainer flags and ``--eval-every``."""
    from bench.train.experiment import TrainerOptions

    return _options(args, TrainerOptions, (*LOADER_OPTIONS, *TRAINER_OPTIONS, EVAL_EVERY_OPTION))


def frozen_options(args: argparse.Namespace):  # noqa: ANN201 - FrozenOptions, lazily imported
    """How a frozen protocol extracts features and fits (``bench.frozen.runner.FrozenOptions``), from the
    loader and extraction flags, ``--feature-cache`` and the protocols' own flags that set an option
    (``--n-jobs``)."""
    from bench.frozen.runner import FrozenOptions

    own = [declared[0][1] for declared in protocol_options().values()]
    return _options(args, FrozenOptions, (*LOADER_OPTIONS, *EXTRACTION_OPTIONS, FEATURE_CACHE_OPTION, *own))
