"""``leaderboard.md`` and ``leaderboard.csv``, rebuilt from every record in a results folder.

The same records always give byte-identical files: rows are sorted, numbers formatted
deterministically, and nothing depends on the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from bench.results import lock_file, read_records, write_text_atomic
from voc.constants import VOC_CLASSES

log = logging.getLogger(__name__)

LEADERBOARD_MD = "leaderboard.md"
LEADERBOARD_CSV = "leaderboard.csv"
LOCK_FILE = ".leaderboard.lock"
COLUMNS: tuple[str, ...] = (
    "rank",
    "model",
    "weights",
    "params (M)",
    "accuracy",
    "mAP",
    "tail acc.",
    "train img/s",
    "eval img/s",
    "epochs",
    "data",
)


def _metric(record: dict[str, Any], key: str) -> float | None:
    value = (record.get("metrics") or {}).get(key)
    return None if value is None else float(value)


def _rate(record: dict[str, Any], key: str) -> float | None:
    value = (record.get("throughput") or {}).get(key)
    return None if value is None else float(value)


def _sort_key(record: dict[str, Any]) -> tuple[float, str]:
    value = _metric(record, "mAP")
    return (-(value if value is not None else float("-inf")), record["model"])


def leaderboard_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per successful record, ranked by mAP (ties by model name), unrounded values."""
    ok = sorted((r for r in records if r.get("status") == "ok"), key=_sort_key)
    rows = []
    for rank, record in enumerate(ok, start=1):
        params = record.get("params")
        rows.append(
            {
                "rank": rank,
                "model": record["model"],
                "weights": record.get("weights", ""),
                "params (M)": None if params is None else params / 1e6,
                "accuracy": _metric(record, "accuracy"),
                "mAP": _metric(record, "mAP"),
                "tail acc.": _metric(record, "tail_accuracy"),
                "train img/s": _rate(record, "train_images_per_s"),
                "eval img/s": _rate(record, "eval_images_per_s"),
                "epochs": (record.get("config") or {}).get("epochs"),
                "data": (record.get("dataset") or {}).get("description", ""),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def per_class_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Per-class AP, one row per successful record, in leaderboard order."""
    ok = sorted((r for r in records if r.get("status") == "ok"), key=_sort_key)
    rows = []
    for record in ok:
        per_class = (record.get("metrics") or {}).get("per_class") or {}
        row: dict[str, Any] = {"model": record["model"]}
        for name in VOC_CLASSES:
            row[name] = (per_class.get(name) or {}).get("ap")
        rows.append(row)
    return pd.DataFrame(rows, columns=["model", *VOC_CLASSES])


def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _markdown_table(frame: pd.DataFrame, digits: dict[str, int]) -> str:
    rows = [[_fmt(row[c], digits.get(c, 4)) for c in frame.columns] for _, row in frame.iterrows()]
    return tabulate(rows, headers=list(frame.columns), tablefmt="github", disable_numparse=True)


def render_markdown(records: Sequence[dict[str, Any]]) -> str:
    """The leaderboard page: header with the commands, ranked table, failed runs, per-class AP."""
    lines = ["# voc-bench leaderboard", ""]
    commands = sorted({r["command"] for r in records if r.get("command")})
    if commands:
        lines.append("Written by:" if len(commands) == 1 else "Written by these commands:")
        lines.append("")
        lines.extend(f"    {c}" for c in commands)
        lines.append("")
    frame = leaderboard_frame(records)
    lines.append("Ranked by mAP. Metrics are fractions (see README, *Metrics*); img/s are steady-state, end to end.")
    lines.append("")
    if frame.empty:
        lines.append("No successful runs yet.")
    else:
        lines.append(_markdown_table(frame, {"params (M)": 2, "train img/s": 1, "eval img/s": 1}))
    failed = sorted((r for r in records if r.get("status") != "ok"), key=lambda r: r["model"])
    if failed:
        lines += ["", "## Failed runs", ""]
        rows = [[r["model"], r.get("weights") or "–", (r.get("error") or "").replace("\n", " ")] for r in failed]
        lines.append(tabulate(rows, headers=["model", "weights", "error"], tablefmt="github", disable_numparse=True))
    if not frame.empty:
        lines += ["", "## Per-class AP", ""]
        lines.append(_markdown_table(per_class_frame(records), {}))
    return "\n".join(lines) + "\n"


def write_leaderboard(out_dir: str | Path) -> tuple[Path, Path]:
    """Rebuild ``leaderboard.md`` and ``leaderboard.csv`` in ``out_dir`` from its records.

    Reading the records and writing both files happen under one lock, so two sweeps writing into
    the same folder cannot leave a leaderboard that misses a record either of them wrote before
    rebuilding.
    """
    out_dir = Path(out_dir)
    md_path, csv_path = out_dir / LEADERBOARD_MD, out_dir / LEADERBOARD_CSV
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_file(out_dir / LOCK_FILE, wait=True)
    try:
        records = read_records(out_dir)
        # both frames list the successful records in the same order (a model may have several runs)
        frame = pd.concat([leaderboard_frame(records), per_class_frame(records).drop(columns="model")], axis=1)
        write_text_atomic(md_path, render_markdown(records))
        write_text_atomic(csv_path, frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    finally:
        if lock is not None:
            lock.close()
    log.info("leaderboard of %d record(s) written to %s", len(records), md_path)
    return md_path, csv_path
