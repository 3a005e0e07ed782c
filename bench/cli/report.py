"""``python benchmark.py report`` and ``python benchmark.py leaderboard``: rebuild report.md and the
leaderboard, or the leaderboard alone, from the records a run stored in ``--out``, without training.
Torch-free: neither imports torch nor Lightning (tests check it in a subprocess)."""

from __future__ import annotations

import argparse

from bench.cli.common import (
    PROG,
    UsageError,
    add_ap_flag,
    add_output_flags,
    add_report_flags,
    check_gallery,
    report_options,
)
from bench.store import LEADERBOARD_MD, read_records

REPORT_HELP = ("rebuild leaderboard.md/.csv and report.md (figures, galleries, bootstrap statistics) from the "
               "records and predictions in --out, without training")
LEADERBOARD_HELP = "rebuild leaderboard.md/.csv from the records in --out, without training; print it"


def add_leaderboard_flags(p: argparse.ArgumentParser) -> None:
    add_output_flags(p)
    add_ap_flag(p)


def add_rebuild_flags(p: argparse.ArgumentParser) -> None:
    add_output_flags(p)
    add_report_flags(p)


def leaderboard(args: argparse.Namespace) -> int:
    """``leaderboard``: leaderboard.md/.csv from the stored records, printed."""
    from bench.report.leaderboard import write_leaderboard

    md_path, _ = write_leaderboard(args.out, ap=args.ap)
    print(md_path.read_text(encoding="utf-8"))
    return 0


def report(args: argparse.Namespace) -> int:
    """``report``: leaderboard and report from the stored runs in --out."""
    from bench.report.leaderboard import write_leaderboard
    from bench.report.markdown import write_report

    options = report_options(args)
    records = read_records(args.out)
    if not records:
        raise UsageError(
            f"{PROG} report: no result.json under {args.out}; run the benchmark first, "
            "or point --out at its results folder"
        )
    check_gallery(options.gallery_models, [r.model for r in records if r.ok])
    write_leaderboard(args.out, ap=args.ap)
    path = write_report(args.out, options)
    print(f"{args.out / LEADERBOARD_MD}\n{path}")
    return 0
