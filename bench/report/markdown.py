"""``report.md``: figures, per-class galleries and the confidence statistics of a results folder,
built from the stored records and predictions alone (no training)."""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench.protocols import report_spec
from bench.report.curves import read_learning_curve
from bench.report.gallery import DEFAULT_K, write_class_gallery
from bench.report.leaderboard import by_protocol, commands_of, format_value
from bench.report.plots import (
    ParetoPoint,
    learning_curves_figure,
    pareto_figure,
    pareto_front,
    per_class_ap_figure,
    pr_curves_figure,
    save_figure,
    tail_accuracy_figure,
)
from bench.report.summary import (
    CONFIDENT,
    DEFAULT_AP,
    FEATURE_RATE,
    BootstrapSettings,
    Summary,
    check_ap,
    display_names,
    summarize,
)
from bench.store import (
    BASELINE_NAME,
    LEADERBOARD_LOCK,
    LEADERBOARD_MD,
    LOG_DIR,
    METRICS_LOG,
    REPORT_DIR,
    REPORT_MD,
    load_eval,
    locked,
    read_runs,
    run_dir_name,
)
from voc.constants import CLASS_TO_INDEX, VOC_CLASSES
from voc.errors import VOCDataError
from voc.imagesets import find_voc_dir
from voc.io import atomic_write

log = logging.getLogger(__name__)

ALL_MODELS = "all"
"""``--gallery-models all``: a gallery for every model."""


@dataclass(frozen=True)
class ReportOptions:
    """What the report shows beyond the fixed figures."""

    gallery_classes: tuple[str, ...] | None = None
    """Classes that get a gallery; ``None``: all 20."""
    gallery_models: tuple[str, ...] | None = None
    """Models that get galleries; ``None``: the leader; ``("all",)``: every model."""
    gallery_k: int = DEFAULT_K
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    ap: str = DEFAULT_AP
    """The AP definition the report ranks, compares and draws by (``--ap``)."""

    def __post_init__(self) -> None:
        check_ap(self.ap)
        if self.gallery_k <= 0:
            raise ValueError(f"--gallery-k must be positive, got {self.gallery_k}")
        unknown = [c for c in self.gallery_classes or () if c not in CLASS_TO_INDEX]
        if unknown:
            raise ValueError(f"--gallery-classes: unknown class(es) {unknown}; the VOC classes are {list(VOC_CLASSES)}")


def check_gallery_models(requested: Sequence[str] | None, available: Sequence[str]) -> None:
    """Raise ValueError naming the flag if ``requested`` names a model that is not among ``available``."""
    if not requested or list(requested) == [ALL_MODELS]:
        return
    unknown = sorted(set(requested) - set(available))
    if unknown:
        raise ValueError(
            f"--gallery-models: {unknown} not among the models {sorted(set(available))}; name some of those, "
            f"or '{ALL_MODELS}'"
        )


def _interval(s: Summary, key: str) -> str:
    ci = s.ci.get(key)
    if ci is None or math.isnan(ci.low):
        return "–"
    return f"[{ci.low:.4f}, {ci.high:.4f}]"


def _verdict(rank: int, s: Summary) -> str:
    if rank == 1:
        return "leader"
    if s.p_not_better is None:
        return "not compared"
    if s.p_not_better >= CONFIDENT:
        return "worse than the leader"
    return "not reliably apart from the leader"


def _confidence_section(summaries: Sequence[Summary], names: Sequence[str], settings: BootstrapSettings) -> list[str]:
    rows = []
    for rank, (s, name) in enumerate(zip(summaries, names, strict=True), start=1):
        std = s.map_seed_std
        rows.append([
            str(rank), name, " ".join(str(seed) for seed in s.seeds),
            format_value(s.map), _interval(s, s.definition.metric), "–" if std is None else f"{std:.4f}",
            format_value(s.mean.get("accuracy")), _interval(s, "accuracy"),
            "–" if rank == 1 else format_value(s.p_not_better, 3), _verdict(rank, s),
        ])
    label = summaries[0].definition.label if summaries else "mAP"
    headers = ["rank", "model", "seeds", label, f"mAP {settings.level:.0%} CI", "mAP sd over seeds", "accuracy",
               f"accuracy {settings.level:.0%} CI", "P(mAP ≤ leader)", "verdict"]
    text = [
        "## Which differences are real",
        "",
        (
            f"Intervals: percentile bootstrap, {settings.n_resamples} resamples of the eval images (drawn with "
            f"replacement, seed {settings.seed}); with several seeds, each resample scores every seed's predictions "
            "and takes their mean. *P(mAP ≤ leader)*: the paired bootstrap the VOC challenge's retrospective used to "
            "compare entries — the share of the same resamples in which the model's mAP is below the leader's, ties "
            f"counting half. At {CONFIDENT} or more the model is worse than the leader; below that, the gap may be "
            "noise of the eval set. *sd over seeds*: how much training itself varies (`--seeds`)."
        ),
        "",
        tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True),
    ]
    notes = [f"- {name}: {s.note}" for s, name in zip(summaries, names, strict=True) if s.note]
    return text + ([""] + notes if notes else [])


def _image_locator(summary: Summary) -> Callable[[str], Path]:
    """``image id -> JPEG path`` in the run's VOC tree; VOCDataError if the tree is not there."""
    record = summary.record
    voc_dir = find_voc_dir(record.dataset_root, record.year)
    images = voc_dir / "JPEGImages"
    if not images.is_dir():
        raise VOCDataError("no JPEGImages folder to draw the images from", images)
    return lambda image_id: images / f"{image_id}.jpg"


def _galleries(
    out_dir: Path, summaries: Sequence[Summary], names: Sequence[str], options: ReportOptions,
    fig_dir: Path = Path(REPORT_DIR), previous: Path | None = None,
) -> list[str]:
    """The galleries' markdown, drawing each from its run's VOC tree. Where the images are gone (a
    clone without the data) and ``previous`` (the report folder as it was before this rebuild) holds
    every class's gallery file of that model, those files are kept as they are instead."""
    named = options.gallery_models if options.gallery_models and list(options.gallery_models) != [ALL_MODELS] else None
    if named:
        chosen = [i for i, s in enumerate(summaries) if s.model in set(named)]
    elif options.gallery_models:
        chosen = list(range(len(summaries)))
    else:
        chosen = [0]
    classes = list(options.gallery_classes or VOC_CLASSES)
    lines = [
        "## Galleries",
        "",
        f"For each class, the {options.gallery_k} eval images each model scored highest (top row, best first) and "
        f"lowest (bottom row), with the score, whether the class is present, and the image's labels. Red titles are "
        "misses. Models: " + ("the leader" if not options.gallery_models else ", ".join(names[i] for i in chosen))
        + " (`--gallery-models`); classes: `--gallery-classes`.",
    ]
    if named:
        missing = sorted(set(named) - {s.model for s in summaries})
        if missing:
            lines += ["", f"No gallery for {', '.join(missing)}: no successful run in this folder."]
    for i in chosen:
        summary, name = summaries[i], names[i]
        lines += ["", f"### {name}", ""]
        folder = run_dir_name(summary.model) if name == summary.model else run_dir_name(summary.runs[0].dir.name)
        rels = [fig_dir / "gallery" / folder / f"{class_name}.jpg" for class_name in classes]
        try:
            locate = _image_locator(summary)
            data = load_eval(summary.runs[0])
        except VOCDataError as err:
            kept = [previous / rel.relative_to(REPORT_DIR) for rel in rels] if previous is not None else []
            if not kept or not all(path.is_file() for path in kept):
                lines += [f"No gallery: {str(err).rstrip('.')}.", ""]
                log.warning("report: no gallery for %s: %s", name, err)
                continue
            for path, rel in zip(kept, rels, strict=True):
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out_dir / rel)
            log.warning("report: gallery of %s kept as it was (%d files): it cannot be redrawn here: %s",
                        name, len(kept), err)
            locate = None
        if len(summary.runs) > 1:
            lines += [f"From the run with seed {summary.seeds[0]}.", ""]
        for class_name, rel in zip(classes, rels, strict=True):
            if locate is not None:
                write_class_gallery(out_dir / rel, name, CLASS_TO_INDEX[class_name], data.ids, data.scores,
                                    data.labels, locate, options.gallery_k)
            lines += [f"#### {class_name}", "", f"![{name}: {class_name}]({rel.as_posix()})", ""]
    return lines


def _throughput_figure(
    out_dir: Path, summaries: Sequence[Summary], names: Sequence[str], fig_dir: Path
) -> list[str]:
    """mAP against the training throughput, or against the feature-extraction throughput where no
    run trained (the frozen protocols); nothing where no run recorded either."""
    key, what = "train_images_per_s", "training throughput"
    if not any(s.mean.get(key) for s in summaries):
        key, what = FEATURE_RATE, "feature-extraction throughput"
    points, left_out = [], []
    for s, n in zip(summaries, names, strict=True):
        rate, value = s.mean.get(key), s.map
        if rate is None or value is None or rate <= 0:
            left_out.append(n)
            continue
        ci = s.map_ci
        slowest, fastest = s.throughput_range.get(key, (None, None))
        points.append(ParetoPoint(n, rate, value, ci.low if ci else None, ci.high if ci else None, slowest, fastest))
    if not points:
        return []
    save_figure(pareto_figure(points, what), out_dir / fig_dir / "map_vs_throughput.png")
    front = [points[i].name for i in pareto_front(points)]
    return [
        f"## mAP against {what}",
        "",
        "Pareto front (no other model is both faster and more accurate): " + (", ".join(front) or "–") + "."
        + (f" Not plotted (no {what}): {', '.join(left_out)}." if left_out else "")
        + (f" Horizontal error bars: the slowest and the fastest steady-state window of the {what}."
           if any(p.rate_low is not None for p in points) else ""),
        "",
        f"![mAP against {what}]({(fig_dir / 'map_vs_throughput.png').as_posix()})",
        "",
    ]


def _figures(
    out_dir: Path, summaries: Sequence[Summary], names: Sequence[str], fig_dir: Path = Path(REPORT_DIR)
) -> list[str]:
    lines: list[str] = []

    curves, undefined = [], []
    for s, n in zip(summaries, names, strict=True):
        if s.tail_curve is not None and not np.isnan(s.tail_curve[1]).all():
            curves.append((n, s.tail_curve[0], s.tail_curve[1]))
        else:
            undefined.append(n)
    save_figure(tail_accuracy_figure(curves), out_dir / fig_dir / "tail_accuracy.png")
    lines += [
        "## Tail accuracy against the threshold",
        "",
        "The course's Tailacc(t): for each class, the accuracy among the images scored above t, averaged over "
        "classes (see docs/metrics.md); one line per model; with several seeds, the mean of their curves "
        "(each seed's thresholds end at its own highest score, so the curves are interpolated onto the grid "
        "that ends first)."
        + (f" No line for {', '.join(undefined)}: Tailacc(t) is undefined there (no score above 0.5)."
           if undefined else ""),
        "",
        f"![Mean tail accuracy against the threshold]({(fig_dir / 'tail_accuracy.png').as_posix()})",
        "",
    ]

    for protocol, group in by_protocol(summaries):
        lines += report_spec(protocol).report_section(
            out_dir, group, [n for s, n in zip(summaries, names, strict=True) if s.protocol == protocol], fig_dir
        )
    lines += _learning_curves(out_dir, summaries, names, fig_dir)

    ap = [[s.per_class_ap.get(c) for c in VOC_CLASSES] for s in summaries]
    save_figure(per_class_ap_figure(names, ap), out_dir / fig_dir / "per_class_ap.png")
    lines += ["## Per-class AP", "", f"![Per-class AP of every model]({(fig_dir / 'per_class_ap.png').as_posix()})", ""]

    lines += _throughput_figure(out_dir, summaries, names, fig_dir)

    leader, name = summaries[0], names[0]
    lines += [f"## Precision–recall curves of the leader, {name}", ""]
    try:
        data = load_eval(leader.runs[0])
    except VOCDataError as err:
        lines.append(f"Not drawn: {err}.")
        log.warning("report: no precision-recall curves: %s", err)
    else:
        per_class = leader.runs[0].record.per_class_values(leader.definition.per_class)
        run_ap = [per_class.get(c) for c in VOC_CLASSES]
        save_figure(pr_curves_figure(name, data.scores, data.labels, run_ap), out_dir / fig_dir / "pr_curves.png")
        seed_note = f" (the run with seed {leader.seeds[0]})" if len(leader.runs) > 1 else ""
        lines.append(f"![Precision–recall curves of {name}]({(fig_dir / 'pr_curves.png').as_posix()}){seed_note}")
    lines.append("")
    return lines


def _learning_curves(out_dir: Path, summaries: Sequence[Summary], names: Sequence[str], fig_dir: Path) -> list[str]:
    """Train loss and eval mAP per epoch, one line per model, from each run's own log (its first
    seed's); nothing where no run has a log (committed runs keep none)."""
    curves, missing = [], []
    for s, name in zip(summaries, names, strict=True):
        if s.model == BASELINE_NAME:  # not trained: no curve to draw
            continue
        curve = read_learning_curve(s.runs[0].dir, name)
        if curve is None:
            missing.append(name)
        else:
            curves.append(curve)
    if not curves:
        return []
    save_figure(learning_curves_figure(curves), out_dir / fig_dir / "learning_curves.png")
    seeds = any(len(s.runs) > 1 for s in summaries)
    return [
        "## Learning curves",
        "",
        "Train loss per epoch (the mean of the epoch's batch losses) and, for runs trained with `--eval-every N`, "
        "the eval split's mAP after every N-th epoch (solid: the raw model; dashed: its EMA), one line per model, "
        f"read from each run's `{LOG_DIR}/{METRICS_LOG}`. These curves pick nothing: the reported model is the "
        "final one (or its EMA, where the protocol declares that)."
        + (" With several seeds, each line is the first seed's run." if seeds else "")
        + (f" No curve for {', '.join(missing)}: no log in its run folder (logs are not committed)."
           if missing else ""),
        "",
        f"![Train loss and eval mAP per epoch]({(fig_dir / 'learning_curves.png').as_posix()})",
        "",
    ]


def render_report(out_dir: str | Path, options: ReportOptions = ReportOptions()) -> str:
    """Draw every figure of ``out_dir``'s runs into ``out_dir/report/`` and return the markdown."""
    out_dir = Path(out_dir)
    runs = read_runs(out_dir)
    summaries = summarize(runs, options.bootstrap, options.ap)
    lines = ["# voc-bench report", ""]
    lines += [
        (
            f"Figures, galleries and confidence statistics for the [leaderboard]({LEADERBOARD_MD}) of this folder, "
            f"built from its {len(runs)} stored run(s); `python benchmark.py report --out DIR` rebuilds it "
            "without training."
        ),
        "",
    ]
    commands = commands_of(runs)
    if commands:
        lines += ["Runs written by:", "", *(f"    {c}" for c in commands), ""]
    if not summaries:
        return "\n".join([*lines, "No successful runs yet."]) + "\n"
    previous = out_dir / f".{REPORT_DIR}.previous"
    if previous.exists():
        shutil.rmtree(previous)
    if (out_dir / REPORT_DIR).exists():
        # set aside, not deleted: galleries whose images are gone are kept from it (see _galleries)
        (out_dir / REPORT_DIR).rename(previous)
    try:
        return _render_parts(out_dir, summaries, lines, options, previous if previous.exists() else None)
    finally:
        if previous.exists():
            shutil.rmtree(previous)


def _render_parts(
    out_dir: Path, summaries: Sequence[Summary], lines: list[str], options: ReportOptions, previous: Path | None
) -> str:
    groups = by_protocol(summaries)
    if len(groups) > 1:
        lines += [
            "One part per protocol: rows of different protocols are never ranked against each other, and each "
            "has its own leader and figures.",
            "",
        ]
    for protocol, group in groups:
        names = display_names(group)
        if len(groups) > 1:
            lines += [f"# Protocol `{protocol}`", ""]
        lines += _confidence_section(group, names, options.bootstrap)
        lines.append("")
        fig_dir = Path(REPORT_DIR) if len(groups) == 1 else Path(REPORT_DIR) / protocol
        lines += _figures(out_dir, group, names, fig_dir)
        lines += _galleries(out_dir, group, names, options, fig_dir, previous)
    return "\n".join(lines).rstrip("\n") + "\n"


def write_report(out_dir: str | Path, options: ReportOptions = ReportOptions()) -> Path:
    """Rebuild ``report.md`` and its figures in ``out_dir`` (under the leaderboard's lock)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_MD
    with locked(out_dir / LEADERBOARD_LOCK):
        atomic_write(path, render_report(out_dir, options))
    log.info("report written to %s", path)
    return path
