"""``leaderboard.md`` and ``leaderboard.csv``, rebuilt from every record in a results folder.

Runs that differ only in their seed form one row (mean over seeds, and their spread). The same
records and predictions always give byte-identical files: rows are sorted, the bootstrap is seeded,
numbers are formatted deterministically, and nothing depends on the clock.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from bench.protocols import report_spec
from bench.report.summary import (
    CONFIDENT,
    DEFAULT_AP,
    DEFAULT_BOOTSTRAP,
    FEATURE_RATE,
    BootstrapSettings,
    Summary,
    display_names,
    protocols_of,
    summarize,
)
from bench.store import (
    BASELINE_NAME,
    LEADERBOARD_CSV,
    LEADERBOARD_LOCK,
    LEADERBOARD_MD,
    REPORT_MD,
    Run,
    RunRecord,
    locked,
    read_runs,
)
from voc.bootstrap import Interval
from voc.constants import VOC_CLASSES
from voc.io import atomic_write
from voc.metrics import AP_DEFINITIONS

log = logging.getLogger(__name__)

MAP_COLUMN = "mAP"
"""The markdown column that :func:`markdown_columns` names after the ranked AP definition."""
COLUMNS: tuple[str, ...] = (
    "rank",
    "model",
    "weights",
    "params (M)",
    "accuracy",
    MAP_COLUMN,
    "P(mAP ≤ leader)",
    "P(mAP ≤ prior)",
    "mAP over seeds",
    "tail acc.",
    "train img/s",
    "eval img/s",
    "feature img/s",
    "epochs",
    "data",
)
"""The markdown table's columns (the mAP one named by :func:`markdown_columns`; a protocol's module
may add its own after "mAP over seeds", e.g. ``lowshot``'s one per k). A protocol's table leaves out
the columns that are empty in every one of its rows (:data:`OPTIONAL_COLUMNS`): the fine-tuning
tables have no feature-extraction rate, the frozen ones no training rate or epochs."""
OPTIONAL_COLUMNS: frozenset[str] = frozenset({"train img/s", "eval img/s", "feature img/s", "epochs"})
"""The markdown columns a table drops where every row's cell is empty (``–``)."""
CSV_COLUMNS: tuple[str, ...] = (
    "rank",
    "protocol",
    "ranked_by",
    "model",
    "weights",
    "params (M)",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "mAP",
    "map_voc07",
    "map_voc12",
    "ranked_map_ci_low",
    "ranked_map_ci_high",
    "p_map_not_better_than_leader",
    "p_map_not_better_than_prior",
    "seeds",
    "ranked_map_seed_std",
    "accuracy_seed_std",
    "tail acc.",
    "train img/s",
    "eval img/s",
    "feature img/s",
    "epochs",
    "data",
    *VOC_CLASSES,
)
"""The CSV's columns: rank within the row's protocol, the mAP key it ranks by (``--ap``: ``mAP``,
``map_voc07`` or ``map_voc12``), unformatted numbers, interval bounds instead of ± text, all three
mAPs (means over seeds); the interval, P(≤ leader), P(≤ prior), seed spread and per-class AP are of the ranked
one. A protocol's module may add columns after these (:func:`protocol_columns`: ``lowshot``'s
``lowshot_k<k>_mean`` / ``_std`` for every k)."""


THROUGHPUT_RANGE_COLUMNS: dict[str, tuple[str, str]] = {
    "train_images_per_s": ("train img/s min", "train img/s max"),
    "eval_images_per_s": ("eval img/s min", "eval img/s max"),
}
"""Throughput key -> the CSV columns of its range: the slowest and the fastest steady-state window."""


def throughput_range_columns(summaries: Sequence[Summary]) -> list[str]:
    """The CSV's throughput range columns (:data:`THROUGHPUT_RANGE_COLUMNS`) where any summary has a
    range: records written before the meter kept windows have none, and their CSV no such columns."""
    if not any(s.throughput_range for s in summaries):
        return []
    return [column for pair in THROUGHPUT_RANGE_COLUMNS.values() for column in pair]


def protocol_columns(summaries: Sequence[Summary]) -> list[str]:
    """The CSV columns the protocols of ``summaries`` add (each module's ``csv_columns`` of its own
    summaries), protocol by protocol (:func:`protocols_of`)."""
    return [column for name, group in by_protocol(summaries) for column in report_spec(name).csv_columns(group)]


def leaderboard_frame(summaries: Sequence[Summary]) -> pd.DataFrame:
    """One row per ranked summary with unrounded values (the CSV)."""
    rows = []
    ranks = {id(s): rank for _, group in by_protocol(summaries) for rank, s in enumerate(group, start=1)}
    for s in summaries:
        rank = ranks[id(s)]
        record = s.record
        params = record.params
        acc_ci, map_ci = s.ci.get("accuracy"), s.map_ci
        ranges = {column: value for key, columns in THROUGHPUT_RANGE_COLUMNS.items()
                  for column, value in zip(columns, s.throughput_range.get(key, (None, None)), strict=True)}
        rows.append(
            {
                "rank": rank,
                "protocol": s.protocol,
                "ranked_by": s.definition.metric,
                "model": s.model,
                "weights": record.weights,
                "params (M)": None if params is None else params / 1e6,
                "accuracy": s.mean.get("accuracy"),
                "accuracy_ci_low": acc_ci.low if acc_ci else None,
                "accuracy_ci_high": acc_ci.high if acc_ci else None,
                "mAP": s.mean.get("mAP"),
                "map_voc07": s.mean.get("map_voc07"),
                "map_voc12": s.mean.get("map_voc12"),
                "ranked_map_ci_low": map_ci.low if map_ci else None,
                "ranked_map_ci_high": map_ci.high if map_ci else None,
                "p_map_not_better_than_leader": s.p_not_better,
                "p_map_not_better_than_prior": s.p_not_above_prior,
                "seeds": " ".join(str(seed) for seed in s.seeds),
                "ranked_map_seed_std": s.map_seed_std,
                "accuracy_seed_std": s.seed_std.get("accuracy"),
                "tail acc.": s.mean.get("tail_accuracy"),
                "train img/s": s.mean.get("train_images_per_s"),
                "eval img/s": s.mean.get("eval_images_per_s"),
                "feature img/s": s.mean.get(FEATURE_RATE),
                "epochs": record.epochs,
                "data": record.data_description,
                **s.per_class_ap,
                **ranges,
                **report_spec(s.protocol).csv_values(s),
            }
        )
    columns = [*CSV_COLUMNS, *throughput_range_columns(summaries), *protocol_columns(summaries)]
    return pd.DataFrame(rows, columns=columns)


def format_value(value: Any, digits: int = 4) -> str:
    """A table cell: ``–`` for a missing or NaN value, floats with ``digits`` decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _with_ci(value: float | None, interval: Interval | None) -> str:
    """``0.6003 ± 0.0290``: the value and the half-width of its bootstrap interval."""
    if interval is None or interval.half_width != interval.half_width:
        return format_value(value)
    return f"{format_value(value)} ± {interval.half_width:.4f}"


def _rate(s: Summary, key: str) -> str:
    """``12.3 (11.8–12.9)``: the mean over seeds of the median window rate, and the slowest and the
    fastest window; the rate alone where the records keep no range."""
    interval = s.throughput_range.get(key)
    value = format_value(s.mean.get(key), 1)
    return value if interval is None else f"{value} ({interval[0]:.1f}–{interval[1]:.1f})"


def _seed_spread(s: Summary) -> str:
    std = s.map_seed_std
    if std is None:
        return f"– (seed {s.seeds[0]})"
    return f"{format_value(s.map)} ± {std:.4f} ({len(s.runs)} seeds)"


def learned_beyond_prior(summary: Summary) -> bool:
    """False only where the paired bootstrap against the prior baseline could not put the model above it
    (P(mAP <= prior) > 1 - :data:`CONFIDENT`); True where it did or where there is no such comparison."""
    p = summary.p_not_above_prior
    return p is None or p <= 1 - CONFIDENT


def markdown_columns(ap: str, extra: Sequence[str] = ()) -> list[str]:
    """:data:`COLUMNS` with the mAP column named after the AP definition ``ap``, and the ``extra``
    columns of the table's protocol (its module's ``table_columns``) after "mAP over seeds"."""
    label = AP_DEFINITIONS[ap].label
    columns = [label if c == MAP_COLUMN else c for c in COLUMNS]
    at = columns.index("mAP over seeds") + 1
    return [*columns[:at], *extra, *columns[at:]]


def without_empty_columns(headers: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """``headers`` and ``rows`` without the :data:`OPTIONAL_COLUMNS` whose every cell is ``–``."""
    keep = [i for i, header in enumerate(headers)
            if header not in OPTIONAL_COLUMNS or any(row[i] != "–" for row in rows)]
    return [headers[i] for i in keep], [[row[i] for i in keep] for row in rows]


def _markdown_rows(summaries: Sequence[Summary], extra: Sequence[str] = ()) -> list[list[str]]:
    rows = []
    for rank, (s, name) in enumerate(zip(summaries, display_names(summaries), strict=True), start=1):
        record = s.record
        params = record.params
        p = "leader" if rank == 1 else format_value(s.p_not_better, 3)
        rows.append(
            [
                str(rank),
                name,
                format_value(record.weights),
                format_value(None if params is None else params / 1e6, 2),
                _with_ci(s.mean.get("accuracy"), s.ci.get("accuracy")),
                _with_ci(s.map, s.map_ci),
                p,
                format_value(s.p_not_above_prior, 3),
                _seed_spread(s),
                *report_spec(s.protocol).table_cells(s, extra),
                format_value(s.mean.get("tail_accuracy")),
                _rate(s, "train_images_per_s"),
                _rate(s, "eval_images_per_s"),
                _rate(s, FEATURE_RATE),
                format_value(record.epochs),
                format_value(record.data_description),
            ]
        )
    return rows


def _explanation(settings: BootstrapSettings | None, ap: str, ranges: bool = False) -> list[str]:
    others = ", ".join(f"`--ap {name}`" for name in AP_DEFINITIONS if name != ap)
    lines = [
        (
            f"Ranked by mAP under the {AP_DEFINITIONS[ap].description} (the mean over seeds where a configuration "
            f"ran with several); {others} rank by another definition, and leaderboard.csv has all three. "
            "Metrics are fractions (see docs/metrics.md); img/s are steady-state, end to end; a frozen "
            "protocol's *feature img/s* is its feature extraction's, the mean of the two splits' rates."
            + (
                " Where a run kept them, img/s are the median over windows of a few steady-state batches (sizes "
                "in each result.json), with the slowest and the fastest window in brackets."
                if ranges else ""
            )
        ),
    ]
    if settings is not None:
        lines.append(
            f"`± h`: half-width of the {settings.level:.0%} bootstrap interval ({settings.n_resamples} resamples of "
            "the "
            f"eval images, seed {settings.seed}). *P(mAP ≤ leader)*: share of the same resamples in which the model's "
            "mAP is below the leader's, ties counting half (paired bootstrap); below "
            f"{CONFIDENT} the two are not reliably apart. *P(mAP ≤ prior)*: the same against the prior-baseline "
            "row of the table (the training split's label frequencies as scores, no image seen); above "
            f"{1 - CONFIDENT:.2f} the model is not shown to have learned more than those frequencies. "
            "The interval itself (bounds in leaderboard.csv and report.md) need not be centred on the value. "
            "*mAP over seeds*: mean ± standard deviation over training seeds (`--seeds`)."
        )
    return lines


def training_budgets(group: Sequence[Summary]) -> dict[str, list[str]]:
    """What each fine-tuned row of a table trained for (``5 epochs at batch 8, whole image at 224
    px``) -> the display names of the rows that did, in table order; empty for a table without
    fine-tuned rows (frozen protocols, the prior alone)."""
    budgets: dict[str, list[str]] = {}
    for s, name in zip(group, display_names(group), strict=True):
        config = s.record.config
        if s.model == BASELINE_NAME or not config.get("epochs"):
            continue
        if config.get("crop_mode") == "full":
            view = f"whole image at {config.get('crop')} px"
        else:
            view = f"resize {config.get('resize')} → {config.get('crop_mode')} crops of {config.get('crop')} px"
        epochs = config["epochs"]
        budgets.setdefault(f"{epochs} epoch{'s' if epochs != 1 else ''} at batch {config.get('batch_size')}, {view}",
                           []).append(name)
    return budgets


def training_budget(budgets: Mapping[str, list[str]]) -> str | None:
    """The one budget of a table's fine-tuned rows (its :func:`training_budgets`), for its header; a table
    whose rows trained for different budgets says so (its note lists them). None without fine-tuned rows."""
    if not budgets:
        return None
    return next(iter(budgets)) if len(budgets) == 1 else "budgets differ between rows"


def render_markdown(
    summaries: Sequence[Summary], failed: Sequence[RunRecord] = (), commands: Sequence[str] = (),
    settings: BootstrapSettings | None = DEFAULT_BOOTSTRAP, ap: str = DEFAULT_AP,
) -> str:
    """The leaderboard page: commands, ranked table (by mAP under ``ap``, which must be the
    summaries' own definition), failed runs, per-class AP, link to the report."""
    lines = ["# voc-bench leaderboard", ""]
    if commands:
        lines.append("Written by:" if len(commands) == 1 else "Written by these commands:")
        lines.append("")
        lines.extend(f"    {c}" for c in commands)
        lines.append("")
    lines += [
        (
            f"Plots, per-class galleries and the confidence statistics: [{REPORT_MD}]({REPORT_MD}) (rebuilt at the end "
            "of each sweep, or by `python benchmark.py report`)."
        ),
        "",
    ]
    for line in _explanation(settings, ap, ranges=any(s.throughput_range for s in summaries)):
        lines += [line, ""]
    groups = by_protocol(summaries)
    if not summaries:
        lines.append("No successful runs yet.")
    elif len(groups) > 1:
        lines += [
            "One table per protocol: rows of different protocols are never ranked against each other, and each "
            "table has its own leader.",
            "",
        ]
    budgets_of = {protocol: training_budgets(group) for protocol, group in groups}
    titles = {protocol: f"Protocol `{protocol}`" + (f": {budget}" if (budget := training_budget(budgets)) else "")
              for protocol, budgets in budgets_of.items()}
    if len(groups) > 1:
        lines += render_overview(groups, titles, ap)
    for protocol, group in groups:
        if len(groups) > 1:
            lines += [f"## {titles[protocol]}", ""]
        elif titles[protocol] != f"Protocol `{protocol}`":
            lines += [f"{titles[protocol]}.", ""]
        spec = report_spec(protocol)
        budgets = budgets_of[protocol]
        if len(budgets) > 1:
            lines += ["Budgets: " + "; ".join(f"{budget} ({', '.join(names)})" for budget, names in budgets.items())
                      + ".", ""]
        for paragraph in spec.table_note(group):
            lines += [paragraph, ""]
        extra = spec.table_columns(group)
        headers, rows = without_empty_columns(markdown_columns(ap, extra), _markdown_rows(group, extra))
        lines.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
        notes = [f"{name}: {s.note}" for s, name in zip(group, display_names(group), strict=True) if s.note]
        notes += [
            f"{name}: not shown above the prior baseline (P(mAP ≤ prior) = {format_value(s.p_not_above_prior, 3)}), "
            "that is, to have learned more than the label frequencies: its rank says nothing about the backbone"
            for s, name in zip(group, display_names(group), strict=True) if not learned_beyond_prior(s)
        ]
        if notes:
            lines += ["", *(f"- {note}" for note in notes)]
        if len(groups) > 1:
            lines.append("")
    if failed:
        if len(groups) <= 1:
            lines.append("")
        lines += ["## Failed runs", ""]
        rows = [[r.model, r.weights or "–", (r.error or "").replace("\n", " ")] for r in failed]
        lines.append(tabulate(rows, headers=["model", "weights", "error"], tablefmt="github", disable_numparse=True))
    for protocol, group in groups:
        label = AP_DEFINITIONS[ap].label.replace("mAP", "AP")
        title = f"## Per-class {label}" if len(groups) == 1 else f"## Per-class {label}, protocol `{protocol}`"
        lines += ["", title, ""]
        rows = [
            [name, *(format_value(s.per_class_ap.get(c)) for c in VOC_CLASSES)]
            for s, name in zip(group, display_names(group), strict=True)
        ]
        lines.append(tabulate(rows, headers=["model", *VOC_CLASSES], tablefmt="github", disable_numparse=True))
    return "\n".join(lines) + "\n"


def heading_anchor(title: str) -> str:
    """The anchor GitHub gives a markdown heading ``title`` (without its ``#``): lower case,
    characters other than letters, digits, spaces, hyphens and underscores dropped, spaces made
    hyphens."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def render_overview(
    groups: Sequence[tuple[str, Sequence[Summary]]], titles: dict[str, str], ap: str
) -> list[str]:
    """The leaderboard's first table where it has several protocols: a row per model and weights, a
    column per protocol (linked to its table by ``titles``, each protocol's heading), each cell the
    protocol's headline mAP under ``ap`` ± the half-width of its interval; rows by model name, the
    prior baseline last. Nothing is ranked across protocols."""
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for protocol, group in groups:
        for s in group:
            key = (s.model, format_value(s.record.weights))
            cells.setdefault(key, {})[protocol] = _with_ci(s.map, s.map_ci)
    keys = sorted(cells, key=lambda k: (k[0] == BASELINE_NAME, k))
    label = AP_DEFINITIONS[ap].label
    headers = ["model", "weights", *(f"[`{p}`](#{heading_anchor(titles[p])})" for p, _ in groups)]
    rows = [[model, weights, *(cells[(model, weights)].get(p, "–") for p, _ in groups)] for model, weights in keys]
    return [
        "## Overview",
        "",
        f"Each model's {label} ± h under every protocol in this folder, one column per protocol (its table "
        "below ranks it). Columns are different experiments: compare down a column, never across a row.",
        "",
        tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True),
        "",
    ]


def by_protocol(summaries: Sequence[Summary]) -> list[tuple[str, list[Summary]]]:
    """``summaries`` split by protocol, in :func:`protocols_of` order, each keeping its ranking."""
    return [(name, [s for s in summaries if s.protocol == name]) for name in protocols_of(summaries)]


def commands_of(runs: Sequence[Run]) -> list[str]:
    """The distinct commands that wrote ``runs``, sorted."""
    return sorted({r.record.command for r in runs if r.record.command})


def failed_records(runs: Sequence[Run]) -> list[RunRecord]:
    """Records of the runs that did not finish, by model name."""
    return sorted((r.record for r in runs if not r.ok), key=lambda r: (r.model, str(r.error)))


def write_leaderboard(
    out_dir: str | Path, settings: BootstrapSettings | None = DEFAULT_BOOTSTRAP, ap: str = DEFAULT_AP
) -> tuple[Path, Path]:
    """Rebuild ``leaderboard.md`` and ``leaderboard.csv`` in ``out_dir`` from its records, ranked by
    mAP under the AP definition ``ap`` (with bootstrap intervals from the stored predictions unless
    ``settings`` is ``None``).

    Reading the records and writing both files happen under one lock, so two sweeps writing into
    the same folder cannot leave a leaderboard that misses a record either of them wrote before
    rebuilding.
    """
    out_dir = Path(out_dir)
    md_path, csv_path = out_dir / LEADERBOARD_MD, out_dir / LEADERBOARD_CSV
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked(out_dir / LEADERBOARD_LOCK):
        runs = read_runs(out_dir)
        summaries = summarize(runs, settings, ap)
        atomic_write(md_path, render_markdown(summaries, failed_records(runs), commands_of(runs), settings, ap))
        frame = leaderboard_frame(summaries)
        atomic_write(csv_path, frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    log.info("leaderboard of %d run(s) written to %s", len(runs), md_path)
    return md_path, csv_path
