"""The mode flags of the one-parser command line, ``--report-only``, ``--leaderboard-only`` and
``--speed``, kept for one release: each prints a one-line deprecation warning naming its job, then the
command runs exactly as before, under the old parser (every job's flags at once) and its checks of
combinations. Remove this module, and its branch in ``bench.cli.main``, in the release after.
Torch-free."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench.cli.common import PROG, HelpFormatter, Parser, UsageError, check_gallery, resolve_models
from bench.cli.report import leaderboard, report
from bench.cli.run import add_run_flags, check_seeds, check_sweep_values, resolve_weights, sweep_shard
from bench.cli.speed import add_measurement_flags, check_measurement_flags, measure
from bench.report.markdown import ReportOptions
from bench.store import BASELINE_NAME
from bench.weights import PRETRAINED_CHOICES

MODE_FLAGS: dict[str, str] = {"--leaderboard-only": "leaderboard", "--report-only": "report", "--speed": "speed"}
"""Deprecated mode flag -> the job that replaces it."""


def mode_flags(argv: Sequence[str], jobs: Sequence[str]) -> list[str]:
    """The deprecated mode flags in ``argv``, where it names no job."""
    if argv and argv[0] in jobs:
        return []
    return [flag for flag in MODE_FLAGS if flag in argv]


def warn(flags: Sequence[str]) -> None:
    for flag in flags:
        print(f"warning: {flag} is deprecated: use `{PROG} {MODE_FLAGS[flag]} ...` (the old form works for one "
              "more release)", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The old parser: the run's flags, ``speed``'s and the mode flags."""
    p = Parser(prog="benchmark.py", formatter_class=HelpFormatter,
               description="The deprecated mode flags; see `python benchmark.py --help` for the jobs.")
    add_run_flags(p)
    add_measurement_flags(p)
    g = p.add_argument_group("deprecated modes")
    g.add_argument("--leaderboard-only", action="store_true", help=f"deprecated: `{PROG} leaderboard`")
    g.add_argument("--report-only", action="store_true", help=f"deprecated: `{PROG} report`")
    g.add_argument("--speed", action="store_true", help=f"deprecated: `{PROG} speed`")
    return p


def check_flags(args: argparse.Namespace) -> ReportOptions:
    """The old parser's combinations: the modes' and every job's, in the order they were checked."""
    check_seeds(args)
    if args.report_only and args.leaderboard_only:
        raise UsageError("give --report-only or --leaderboard-only, not both")
    if args.report_only and args.no_report:
        raise UsageError("give --report-only or --no-report, not both")
    if args.speed and args.seeds is not None:
        raise UsageError("--seeds does not apply to --speed (it measures throughput, not results); use --seed")
    given = [flag for flag, value in (("--speed-workers", args.speed_workers), ("--speed-threads", args.speed_threads),
                                      ("--target-rate", args.target_rate), ("--speed-data-only", args.speed_data_only))
             if value not in (None, False)]
    if given and not args.speed:
        raise UsageError(f"{', '.join(given)}: only with --speed")
    check_measurement_flags(args)
    light = [flag for flag in MODE_FLAGS if getattr(args, flag[2:].replace("-", "_"))]
    if args.shard is not None and light:
        raise UsageError(f"--shard splits a training sweep; it does not combine with {light[0]}")
    if not light:
        sweep_shard(args, quiet=True)
    return check_sweep_values(args)


def run(args: argparse.Namespace, command: str) -> int:
    """The old command line's job for its mode flag (``command`` unused: it writes no record)."""
    check_flags(args)
    if args.leaderboard_only:
        return leaderboard(args)
    if args.report_only:
        return report(args, flag="--report-only")
    models = resolve_models(args.models)
    check_gallery(args.gallery_models, [*models, BASELINE_NAME])
    if args.pretrained not in PRETRAINED_CHOICES:
        resolve_weights(models[:1], args.pretrained)  # --speed runs random init; a missing file is still an error
    return measure(args, models)
