"""``python benchmark.py``: train and evaluate timm backbones on VOC the same way; write a leaderboard.

One job per subcommand, each with its own module and flags: ``run`` (the default: ``python
benchmark.py --models resnet50`` is ``python benchmark.py run --models resnet50``; :mod:`bench.cli.run`),
``report`` and ``leaderboard`` (rebuilds from stored records; :mod:`bench.cli.report`) and ``speed``
(throughput; :mod:`bench.cli.speed`). A flag a job has no use for is not on its parser, and the parser
names the job that has it; the removed mode flags (``--report-only``, ``--leaderboard-only``, ``--speed``)
are errors that name the job replacing them.

Light paths stay light: ``report``, ``leaderboard`` and ``--help`` import neither torch nor Lightning;
the training side (``bench.train``) is imported only when a run needs it.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.cli import report as report_jobs
from bench.cli import run as run_job
from bench.cli import speed as speed_job
from bench.cli.common import PROG, HelpFormatter, Parser, UsageError
from voc.errors import VOCDataError

__all__ = ["DEFAULT_JOB", "JOBS", "UsageError", "build_parser", "main", "parse_args"]


@dataclass(frozen=True)
class Job:
    """One subcommand: its help line, its flags and what runs it (with the command as typed)."""

    help: str
    add_flags: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, str], int]
    description: str | None = None


JOBS: dict[str, Job] = {
    "run": Job("train (or probe) every model under one protocol and rank them (the default job)",
               run_job.add_run_flags, run_job.run, run_job.DESCRIPTION),
    "report": Job(report_jobs.REPORT_HELP, report_jobs.add_rebuild_flags,
                  lambda args, command: report_jobs.report(args)),
    "leaderboard": Job(report_jobs.LEADERBOARD_HELP, report_jobs.add_leaderboard_flags,
                       lambda args, command: report_jobs.leaderboard(args)),
    "speed": Job("measure throughput, model-only against end to end, and the data pipeline alone",
                 speed_job.add_speed_flags, lambda args, command: speed_job.speed(args), speed_job.DESCRIPTION),
}
"""The jobs, by subcommand."""
DEFAULT_JOB = "run"


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subparser per job of :data:`JOBS`."""
    parser = Parser(
        prog="benchmark.py",
        description="Train and evaluate timm backbones on PASCAL VOC multi-label classification under one "
                    "protocol and rank them by mAP in a markdown leaderboard.",
        epilog=f"Without a job, {DEFAULT_JOB}: `{PROG} --models resnet50` is `{PROG} run --models resnet50`. "
               f"Each job's flags: `{PROG} JOB --help`.",
    )
    sub = parser.add_subparsers(dest="job", title="jobs", metavar="{" + ",".join(JOBS) + "}", parser_class=Parser)
    parsers = parser.jobs
    for name, job in JOBS.items():
        parsers[name] = sub.add_parser(name, help=job.help, description=job.description or job.help,
                                       usage=f"%(prog)s [flags]  (`{PROG} {name} --help` lists them)",
                                       formatter_class=HelpFormatter)
        job.add_flags(parsers[name])
    flags = {name: set(p._option_string_actions) for name, p in parsers.items()}  # argparse's table of flags
    for name, p in parsers.items():
        for other, other_flags in flags.items():
            for flag in sorted(other_flags - flags[name]):
                p.elsewhere.setdefault(flag, []).append(other)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed as its job's (:data:`DEFAULT_JOB` where it names none); a flag the job does
    not have is an error of the job's parser, which names the job that has it."""
    argv = list(argv)
    if not argv or (argv[0] not in JOBS and argv[0] not in ("-h", "--help")):
        argv.insert(0, DEFAULT_JOB)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.jobs[args.job].error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status: 0 when every model succeeded, 1 when a run
    failed, 2 for a usage or data error found before any work, 130 when interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = PROG + ("" if not argv else " " + shlex.join(argv))
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return JOBS[args.job].run(args, command)
    except (UsageError, VOCDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
