"""``python benchmark.py speed``: measure throughput instead of training, model-only against end to
end at a protocol's shapes (fine-tuning steps, or a frozen protocol's feature extraction), and the data
pipeline alone; prints tables, writes ``speed.json`` and ``speed_data.json``. Nothing here runs in a
benchmark run; torch is imported once the flags are checked."""

from __future__ import annotations

import argparse
import logging
import sys

from bench.cli.common import UsageError, add_output_flags, resolve_models
from bench.cli.flags import (
    add_extraction_flags,
    add_finetune_flags,
    add_loader_flags,
    add_selection_flags,
    add_trainer_flags,
    add_view_flags,
    finetune_group,
    frozen_group,
    protocol_options,
)
from bench.cli.settings import (
    check_cache_dir,
    check_frozen_trainer,
    check_frozen_values,
    check_protocol_flags,
    frozen_options,
    frozen_protocol_from_args,
    is_frozen,
    planned_run,
    protocol_from_args,
    protocol_summary,
    trainer_options,
)
from bench.data import DEFAULT_YEAR, DataSource, resolve_data
from bench.protocols import get_spec
from bench.protocols.settings import FrozenProtocol, Protocol
from bench.protocols.spec import positive_float
from bench.store import SPEED_DATA_FILE, SPEED_FILE

log = logging.getLogger("benchmark")

SPEED_STEPS = 20
"""``--speed-steps`` on an accelerator."""
SPEED_STEPS_CPU = 2
"""``--speed-steps`` on the CPU: ResNet-50 at the course shapes (batch 8 x 5 crops) measured in 3 min 56 s on
2 cores with 3 repeats (5 min 0 s with 3 steps; docs/performance.md)."""

NOT_MEASURED: dict[str, None] = {"seeds": None, "eval_every": None, "feature_cache": None}
"""The run's settings ``speed`` has no flag for, left at the protocol's defaults: one seed, no evaluation
during training; nor has it the frozen protocols' own flags (feature extraction is measured, not the
fits): :func:`add_speed_flags` leaves those at ``None`` too."""

DESCRIPTION = (
    "Measure throughput instead of training: model-only (random tensors) against end-to-end (our real "
    "pipeline), train and eval, at the protocol's shapes (default: the course protocol's, 400 -> 5 x 224, batch 8, "
    "whatever the data; a frozen protocol: its feature extraction), and the data pipeline alone with 1 .. cores "
    "DataLoader workers; prints tables, writes OUT/speed.json and OUT/speed_data.json. Every model starts from "
    "random init."
)


def add_measurement_flags(p: argparse.ArgumentParser) -> None:
    """How long and how often to measure, and what else to time."""
    g = p.add_argument_group("measurement")
    g.add_argument("--speed-course-loop", action="store_true",
                   help="also time a straightforward course-style training loop (fp32, NCHW, PIL transforms, a "
                        "Python loop of 20 BCE calls) for comparison; slow")
    g.add_argument("--speed-steps", type=int, default=None,
                   help=f"timed batches per measurement, after 3 warm-up batches (a split with fewer batches is "
                        f"cycled) (default: {SPEED_STEPS_CPU} on the CPU, where the course shapes take seconds a "
                        f"step, {SPEED_STEPS} elsewhere; see docs/performance.md)")
    g.add_argument("--speed-repeats", type=int, default=3,
                   help="repeat every measurement this many times; the table shows the median and the min-max, "
                        "speed.json keeps every repeat")
    g.add_argument("--speed-workers", type=int, nargs="+", default=None, metavar="N",
                   help="measure end to end with each of these DataLoader worker counts, one row each (default: "
                        "--num-workers, else the machine's default: cores - 1, at most 8)")
    g.add_argument("--speed-threads", default=None, metavar="auto|N",
                   help="the main process's compute threads during the end-to-end runs: 'auto' gives it the cores "
                        "the workers leave (cores - workers, at least 1), N sets N (default: torch's own, as in "
                        "training runs)")
    g.add_argument("--speed-data-only", action="store_true",
                   help="measure only the data pipeline (each loader with 1 .. cores DataLoader workers, no model): "
                        "how fast this host's CPUs decode and transform, e.g. before renting GPUs for it")
    g.add_argument("--target-rate", type=positive_float, default=None, metavar="IMG_PER_S",
                   help="also print how many DataLoader workers deliver this many images/s (e.g. a GPU's published "
                        "model-only rate), from the measured per-worker rate of the data-only loaders (always "
                        "printed for each model's measured model-only rates)")


def add_speed_flags(p: argparse.ArgumentParser) -> None:
    """Every flag of ``speed``, in the order ``--help`` shows them."""
    add_selection_flags(p)
    add_output_flags(p)
    add_view_flags(p)
    add_finetune_flags(p.add_argument_group(finetune_group()))
    add_extraction_flags(p.add_argument_group(frozen_group()))
    add_loader_flags(p)
    add_trainer_flags(p)
    add_measurement_flags(p)
    p.set_defaults(**NOT_MEASURED, **dict.fromkeys(protocol_options()))


def default_speed_steps(accelerator: str) -> int:
    """``--speed-steps`` when not given: :data:`SPEED_STEPS_CPU` on the CPU, :data:`SPEED_STEPS` elsewhere."""
    return SPEED_STEPS_CPU if accelerator == "cpu" else SPEED_STEPS


def check_measurement_flags(args: argparse.Namespace) -> None:
    """The ``--speed-*`` values, and those that time a model with ``--speed-data-only`` or a frozen protocol."""
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
    if is_frozen(args) and model_side:
        raise UsageError(f"{', '.join(model_side)}: time the fine-tuning loops; speed with --protocol "
                         f"{args.protocol} times feature extraction (use --num-workers for its loader)")


def check_speed_flags(args: argparse.Namespace) -> None:
    """Every combination of ``speed``'s flags that cannot run raises UsageError naming the flag."""
    check_measurement_flags(args)
    check_cache_dir(args)
    check_protocol_flags(args)
    check_frozen_trainer(args)
    check_frozen_values(args)


def speed(args: argparse.Namespace) -> int:
    """``speed``: checks the flags, resolves models and data, then measures every model."""
    check_speed_flags(args)
    models = resolve_models(args.models)
    return measure(args, models)


def measure(args: argparse.Namespace, models: list[str]) -> int:
    """Measure ``models`` (resolved) as the checked flags ask; the data of a fine-tuning protocol's
    real-VOC settings (its year included), whatever the data."""
    if args.speed_steps is None:
        from bench.hardware import resolve_accelerator

        args.speed_steps = default_speed_steps(resolve_accelerator(args.accelerator))
    if is_frozen(args):
        data = resolve_data(args.data, year=args.year or DEFAULT_YEAR)
        protocol = frozen_protocol_from_args(args, data)
        return _speed_frozen(models, protocol, planned_run(args, protocol, data, "none").data, args)
    data = resolve_data(args.data, year=args.year or get_spec(args.protocol).default(False).year)
    protocol = protocol_from_args(args, data, speed=True)
    return _speed_finetune(models, protocol, planned_run(args, protocol, data, "none").data, args)


def _speed_finetune(models: list[str], protocol: Protocol, data: DataSource, args: argparse.Namespace) -> int:
    from bench.speed.data import default_data_workers, measure_data_only
    from bench.speed.training import run_speed, speed_caption, speed_table

    log.info("Speed at %s on %s", protocol_summary(protocol),
             data.describe(protocol.year, protocol.train_split, protocol.eval_split))
    options = trainer_options(args)
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
    return _finish(rows, data_rows, args, caption=True)


def _speed_frozen(models: list[str], protocol: FrozenProtocol, data: DataSource, args: argparse.Namespace) -> int:
    """``speed`` with a frozen protocol: feature extraction, model-only against end to end, and the
    view's loader alone with 1 .. cores workers."""
    from bench.frozen.runner import build_extractor
    from bench.speed.data import default_data_workers
    from bench.speed.extraction import extraction_data_only, measure_extraction_speed
    from bench.speed.training import RANDOM_INIT, speed_caption, speed_table
    from voc.io import write_json_atomic

    options = frozen_options(args)
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
    return _finish(rows, data_rows, args, caption=False)


def _finish(rows: list[dict], data_rows: list[dict], args: argparse.Namespace, *, caption: bool) -> int:
    """The end of every measurement: the workers each rate needs, ``speed_data.json``, the data-only
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
