"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no global state).

Each function takes plain data and returns a :class:`~matplotlib.figure.Figure`; :func:`save_figure`
writes it. Sizes grow with the number of models and classes so that no text overlaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from sklearn.metrics import precision_recall_curve

from bench.report.curves import LearningCurve
from voc.constants import IGNORED, POSITIVE, VOC_CLASSES

DPI = 100
"""Pixels per inch of the PNGs: small files that open fast and stay sharp on screen."""
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


JPEG_QUALITY = 85


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG, or as a JPEG where ``path`` ends in ``.jpg`` (creating folders);
    returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        figure.savefig(path, format="jpeg", dpi=DPI, pil_kwargs={"quality": JPEG_QUALITY})
    else:
        # no version stamp: the same bytes each time
        figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _legend_below(figure: Figure, ax: Axes) -> None:
    """The axes' legend under the plot, outside it, in up to three columns."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        figure.legend(
            handles, labels, loc="outside lower center", ncols=min(len(handles), 3), frameon=False, fontsize=9
        )


def tail_accuracy_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> Figure:
    """Mean tail accuracy over classes against the threshold t, one line per (name, t, values)."""
    figure = new_figure(7.5, 4.8 + 0.25 * ((len(curves) + 2) // 3))
    ax = figure.add_subplot()
    for (name, thresholds, values), color, marker in zip(curves, _colors(len(curves)), _MARKERS * 10, strict=False):
        ax.plot(thresholds, values, label=name, color=color, marker=marker, markersize=4, linewidth=1.5)
    ax.set_xlabel("threshold t on the predicted probability")
    ax.set_ylabel("mean tail accuracy over classes, Tailacc(t)")
    ax.set_title("Tail accuracy against the threshold")
    ax.set_ylim(0.0, 1.02)
    ax.grid(True, alpha=0.3)
    _legend_below(figure, ax)
    return figure


def per_class_ap_figure(
    models: Sequence[str], ap: Sequence[Sequence[float | None]], class_names: Sequence[str] = VOC_CLASSES
) -> Figure:
    """Per-class AP as grouped horizontal bars: one group per class (names on the y axis, one per
    row, so 20 never overlap), one bar per model."""
    n_models, n_classes = len(models), len(class_names)
    bar = 0.8 / max(n_models, 1)
    figure = new_figure(8.0, 1.5 + n_classes * max(0.32, 0.14 * n_models))
    ax = figure.add_subplot()
    centers = np.arange(n_classes)
    for m, (name, color) in enumerate(zip(models, _colors(n_models), strict=True)):
        values = np.array([np.nan if v is None else v for v in ap[m]], dtype=np.float64)
        offsets = centers - 0.4 + bar * (m + 0.5)
        ax.barh(offsets, np.nan_to_num(values), height=bar, color=color, label=name)
    ax.set_yticks(centers, labels=list(class_names))
    ax.invert_yaxis()  # first class on top
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("average precision (AP)")
    ax.set_title("Per-class AP")
    ax.grid(True, axis="x", alpha=0.3)
    _legend_below(figure, ax)
    return figure


@dataclass(frozen=True)
class ParetoPoint:
    """One configuration on the mAP/throughput plane."""

    name: str
    train_images_per_s: float
    map: float
    map_low: float | None = None
    map_high: float | None = None
    rate_low: float | None = None
    """The slowest and the fastest steady-state window of the training throughput, where recorded."""
    rate_high: float | None = None


def pareto_front(points: Sequence[ParetoPoint]) -> list[int]:
    """Indices of the points no other point beats on both mAP and throughput (at least as good on
    both and better on one), ordered by throughput."""
    front = []
    for i, p in enumerate(points):
        dominated = any(
            q.map >= p.map and q.train_images_per_s >= p.train_images_per_s
            and (q.map > p.map or q.train_images_per_s > p.train_images_per_s)
            for j, q in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i].train_images_per_s, points[i].map))


def pareto_figure(points: Sequence[ParetoPoint], what: str = "training throughput") -> Figure:
    """mAP (with its bootstrap interval) against a throughput, ``what`` (with its slowest and fastest
    window, where the point has them); the Pareto front joined by a line and marked in the legend.
    Names are in the legend, not next to the points, so they never overlap."""
    figure = new_figure(7.5, 4.8 + 0.25 * ((len(points) + 2) // 3))
    ax = figure.add_subplot()
    front = pareto_front(points)
    for i, (p, color, marker) in enumerate(zip(points, _colors(len(points)), _MARKERS * 10, strict=False)):
        yerr = None
        if p.map_low is not None and p.map_high is not None:
            yerr = [[max(p.map - p.map_low, 0.0)], [max(p.map_high - p.map, 0.0)]]
        xerr = None
        if p.rate_low is not None and p.rate_high is not None:
            xerr = [[max(p.train_images_per_s - p.rate_low, 0.0)], [max(p.rate_high - p.train_images_per_s, 0.0)]]
        label = f"{p.name} (Pareto)" if i in front else p.name
        ax.errorbar([p.train_images_per_s], [p.map], yerr=yerr, xerr=xerr, fmt=marker, color=color, markersize=8,
                    capsize=3, label=label)
    if len(front) > 1:
        ax.plot([points[i].train_images_per_s for i in front], [points[i].map for i in front], color="0.4",
                linestyle="--", linewidth=1, zorder=0, label="Pareto front")
    ax.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 20, 30, 50 rather than 2x10^1
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ranges = any(p.rate_low is not None and p.rate_high is not None for p in points)
    bars = "; error bar: slowest to fastest window" if ranges else ""
    ax.set_xlabel(f"{what}, images/s (steady state, end to end{bars}; log scale)")
    ax.set_ylabel("mAP (error bar: 95% bootstrap interval)")
    ax.set_title(f"mAP against {what}")
    ax.grid(True, which="both", alpha=0.3)
    _legend_below(figure, ax)
    return figure


@dataclass(frozen=True)
class LowShotLine:
    """One model's low-shot curve: mAP mean and std over the samples at each k."""

    name: str
    k: Sequence[int]
    mean: Sequence[float]
    std: Sequence[float]


def lowshot_figure(lines: Sequence[LowShotLine], ylabel: str = "mAP") -> Figure:
    """mAP against k on a log-2 x axis, one line per model with a ± std band; ticks at the k values."""
    figure = new_figure(7.5, 4.8 + 0.25 * ((len(lines) + 2) // 3))
    ax = figure.add_subplot()
    for line, color, marker in zip(lines, _colors(len(lines)), _MARKERS * 10, strict=False):
        k, mean, std = np.asarray(line.k), np.asarray(line.mean), np.asarray(line.std)
        ax.plot(k, mean, marker=marker, color=color, label=line.name)
        ax.fill_between(k, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    ks = sorted({k for line in lines for k in line.k})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    ax.set_xlabel("k: positives per class (19·k negatives; log scale)")
    ax.set_ylabel(f"{ylabel} (band: ± 1 std over samples)")
    ax.set_title("Low-shot mAP against k")
    ax.grid(True, which="major", alpha=0.3)
    _legend_below(figure, ax)
    return figure


def pr_curves_figure(
    model: str,
    scores: np.ndarray,
    labels: np.ndarray,
    ap: Sequence[float | None],
    class_names: Sequence[str] = VOC_CLASSES,
) -> Figure:
    """Precision against recall of one model, one small panel per class (4 x 5 for VOC), each
    titled with the class and its AP; ignored (-1) entries left out."""
    n = len(class_names)
    cols = 5
    rows = (n + cols - 1) // cols
    figure = new_figure(2.6 * cols, 2.4 * rows + 0.6)
    axes = figure.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for c, name in enumerate(class_names):
        ax = axes[c // cols][c % cols]
        keep = labels[:, c] != IGNORED
        positive = labels[keep, c] == POSITIVE
        value = ap[c]
        if positive.any():
            precision, recall, _ = precision_recall_curve(positive, scores[keep, c])
            ax.step(recall, precision, where="post", linewidth=1.3)
        ax.set_title(f"{name} (AP {'–' if value is None else f'{value:.3f}'})", fontsize=9)
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
    for c in range(n, rows * cols):
        axes[c // cols][c % cols].set_visible(False)
    for r in range(rows):
        axes[r][0].set_ylabel("precision", fontsize=9)
    for col in range(cols):
        axes[rows - 1][col].set_xlabel("recall", fontsize=9)
    figure.suptitle(f"Precision–recall curves of {model} on the eval split")
    return figure


def learning_curves_figure(curves: Sequence[LearningCurve]) -> Figure:
    """Train loss per epoch (left) and, where any run logged it, eval mAP per epoch (right: the raw
    model solid, its EMA dashed in the same colour), one line per run."""
    with_eval = any(c.has_eval for c in curves)
    figure = new_figure(12.0 if with_eval else 7.5, 4.6 + 0.25 * ((len(curves) + 2) // 3))
    axes = figure.subplots(1, 2 if with_eval else 1, squeeze=False)[0]
    for curve, color, marker in zip(curves, _colors(len(curves)), _MARKERS * 10, strict=False):
        axes[0].plot(curve.loss_epochs, curve.train_loss, color=color, marker=marker, markersize=4, label=curve.name)
        if with_eval and curve.has_eval:
            axes[1].plot(curve.eval_epochs, curve.eval_map, color=color, marker=marker, markersize=4)
            if curve.ema_eval_map:
                axes[1].plot(curve.eval_epochs, curve.ema_eval_map, color=color, marker=marker, markersize=3,
                             linestyle="--", alpha=0.8)
    axes[0].set_ylabel("train loss (mean over the epoch's batches)")
    axes[0].set_title("Train loss per epoch")
    if with_eval:
        axes[1].set_ylabel("eval mAP (solid: raw model, dashed: EMA)")
        axes[1].set_title("Eval mAP per epoch (--eval-every)")
        axes[1].set_ylim(0.0, 1.02)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
    _legend_below(figure, axes[0])
    return figure
