"""What every job of ``python benchmark.py`` shares: :class:`UsageError`, the parser class that
names the job a misplaced flag belongs to, the value parsers, and the output and report flag groups.
Torch-free."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from bench.report.gallery import DEFAULT_K
from bench.report.markdown import ALL_MODELS, ReportOptions, check_gallery_models
from bench.report.summary import DEFAULT_AP
from voc.metrics import AP_DEFINITIONS

PROG = "python benchmark.py"
"""How the command is typed; messages name jobs as ``python benchmark.py <job>``."""


class UsageError(Exception):
    """A flag, or a combination of flags, that cannot be run; the message names the flag and the fix.

    ``bench.cli.main`` prints it and exits with status 2, before any work.
    """


REMOVED_FLAGS: dict[str, str] = {"--report-only": "report", "--leaderboard-only": "leaderboard", "--speed": "speed"}
"""The mode flags the jobs replaced -> the job to run instead."""


class Parser(argparse.ArgumentParser):
    """A job's parser: a flag it does not have but another job has is reported with that job's name,
    and a removed mode flag (:data:`REMOVED_FLAGS`) with the job that replaced it."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - argparse's own signature
        super().__init__(*args, **kwargs)
        self.elsewhere: dict[str, list[str]] = {}
        """Flag -> the other jobs that have it (``bench.cli.build_parser`` fills it in)."""
        self.jobs: dict[str, Parser] = {}
        """The command's parser: each job's, by name."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            for token in message.split(":", 1)[1].split():
                flag = token.split("=", 1)[0]
                jobs = self.elsewhere.get(flag, ())
                if jobs:
                    message += f"; {flag} is a flag of " + " and ".join(f"`{PROG} {job}`" for job in jobs)
                if flag in REMOVED_FLAGS:
                    message += f"; {flag}: use `{PROG} {REMOVED_FLAGS[flag]}`"
        super().error(message)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's help with its default, except where that is ``None`` or ``False`` (not given: the
    help says what happens then)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def limit(text: str) -> int | float:
    """``10`` → 10 batches; ``0.25`` → a quarter of the batches (as Lightning reads it)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of batches or a fraction, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return int(value) if value.is_integer() and "." not in text else value


def devices(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def add_output_flags(p: argparse.ArgumentParser) -> None:
    """``--out`` and ``-v``: every job has them."""
    p.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def add_ap_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ap", choices=tuple(AP_DEFINITIONS), default=DEFAULT_AP,
                   help="the AP definition leaderboard.md and report.md rank and show: sklearn (non-interpolated), "
                        "voc07 (11-point), voc12 (VOC2010+ envelope); leaderboard.csv has all three "
                        "(default: %(default)s)")


def add_report_flags(p: argparse.ArgumentParser) -> None:
    """What report.md shows: the AP definition and the galleries (the run and ``report``)."""
    add_ap_flag(p)
    g = p.add_argument_group("report.md")
    g.add_argument("--gallery-classes", nargs="+", default=None, metavar="CLASS",
                   help="classes that get a gallery of top/bottom-scored images in report.md (default: all 20)")
    g.add_argument("--gallery-models", nargs="+", default=None, metavar="NAME",
                   help=f"models that get galleries: model names, or '{ALL_MODELS}' (default: the leader)")
    g.add_argument("--gallery-k", type=int, default=DEFAULT_K,
                   help="images per gallery row: the k highest- and k lowest-scored eval images of a class")


def report_options(args: argparse.Namespace) -> ReportOptions:
    """The report the flags of :func:`add_report_flags` ask for; UsageError for a bad value."""
    if args.gallery_models and ALL_MODELS in args.gallery_models and len(args.gallery_models) > 1:
        raise UsageError(f"--gallery-models: '{ALL_MODELS}' stands alone")
    try:
        return ReportOptions(
            gallery_classes=tuple(args.gallery_classes) if args.gallery_classes else None,
            gallery_models=tuple(args.gallery_models) if args.gallery_models else None,
            gallery_k=args.gallery_k,
            ap=args.ap,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def check_gallery(requested: Sequence[str] | None, available: Sequence[str]) -> None:
    """``--gallery-models`` must name models among ``available``."""
    try:
        check_gallery_models(requested, available)
    except ValueError as err:
        raise UsageError(str(err)) from None


def resolve_models(names: Sequence[str]) -> list[str]:
    """``--models`` as timm names (wildcards expanded); UsageError with a suggestion for an unknown one."""
    from bench.registry import UnknownModelError
    from bench.registry import resolve_models as resolve

    try:
        return resolve(names)
    except UnknownModelError as err:
        raise UsageError(str(err)) from None
