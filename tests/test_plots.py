"""The report's figures read well: labelled axes, legends, and no text drawn over other text."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from bench.report.gallery import GalleryItem, gallery_figure
from bench.report.plots import (
    ParetoPoint,
    pareto_figure,
    per_class_ap_figure,
    pr_curves_figure,
    save_figure,
    tail_accuracy_figure,
)
from voc.constants import VOC_CLASSES

MODELS = [f"model_{k}_with_a_longish_name" for k in range(10)]


def _in_view(locations: np.ndarray, labels: list[Text], limits: tuple[float, float]) -> list[Text]:
    lo, hi = sorted(limits)
    return [label for loc, label in zip(locations, labels, strict=False) if lo - 1e-9 <= loc <= hi + 1e-9]


def _visible_texts(figure: Figure) -> list[Text]:
    """Every text the figure draws: titles, axis labels, tick labels inside the view, legends."""
    figure.canvas.draw()
    texts: list[Text] = [figure._suptitle] if figure._suptitle is not None else []
    for ax in figure.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        texts += _in_view(ax.get_xticks(), ax.get_xticklabels(), ax.get_xlim())
        texts += _in_view(ax.get_yticks(), ax.get_yticklabels(), ax.get_ylim())
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
    for legend in figure.legends:
        texts += legend.get_texts()
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _overlapping(figure: Figure) -> list[tuple[str, str]]:
    """Pairs of visible texts whose boxes overlap (by more than a pixel)."""
    renderer = figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer).padded(-1)) for t in _visible_texts(figure)]
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def _axes_labels(figure: Figure) -> list[tuple[str, str]]:
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in figure.axes if ax.get_visible()]


def test_per_class_ap_bars_for_ten_models_have_no_overlapping_text() -> None:
    rng = np.random.default_rng(0)
    figure = per_class_ap_figure(MODELS, rng.random((10, 20)).tolist())
    assert _overlapping(figure) == []
    (ax,) = figure.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == list(VOC_CLASSES)
    assert ax.get_xlabel() == "average precision (AP)"
    assert len(figure.legends[0].get_texts()) == 10


def test_tail_accuracy_and_pareto_figures_are_labelled_without_overlaps() -> None:
    t = np.linspace(0.5, 0.975, 20)
    curves = [(m, t, np.linspace(0.6, 0.9, 20) + 0.01 * k) for k, m in enumerate(MODELS)]
    figure = tail_accuracy_figure(curves)
    assert _overlapping(figure) == []
    xlabel, ylabel = _axes_labels(figure)[0]
    assert "threshold" in xlabel and "Tailacc" in ylabel

    # a trade-off: each faster model is less accurate, so all but the last (dominated) are on the front
    points = [
        ParetoPoint(m, 2.0 * (k + 1), 0.8 - 0.03 * k, 0.75 - 0.03 * k, 0.85 - 0.03 * k) for k, m in enumerate(MODELS)
    ]
    points[-1] = ParetoPoint(MODELS[-1], 1.0, 0.1)
    figure = pareto_figure(points)
    assert _overlapping(figure) == []
    xlabel, ylabel = _axes_labels(figure)[0]
    assert "images/s" in xlabel and "mAP" in ylabel
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert "Pareto front" in legend and sum("(Pareto)" in s for s in legend) == 9


def test_pr_curve_panels_have_no_overlapping_titles() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random((200, 20)) < 0.2).astype(np.int64)
    labels[rng.random((200, 20)) < 0.05] = -1
    scores = np.clip(0.5 * (labels == 1) + 0.5 * rng.random((200, 20)), 0, 1)
    figure = pr_curves_figure("resnet50", scores, labels, [0.5] * 20)
    assert _overlapping(figure) == []
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles[0] == "aeroplane (AP 0.500)" and len(titles) == 20


def test_gallery_with_long_labels_has_no_overlapping_text(tmp_path: Path) -> None:
    image = tmp_path / "x.jpg"
    Image.new("RGB", (500, 375), (90, 120, 200)).save(image)
    many = tuple(VOC_CLASSES[:8])
    items = [GalleryItem(f"2008_00{k:04d}", 0.9 - 0.1 * k, 1 if k % 2 else 0, many) for k in range(5)]
    figure = gallery_figure("resnet50", "dog", items, items[::-1], lambda _: image)
    assert _overlapping(figure) == []


def test_saved_figures_are_small_pngs_and_jpegs(tmp_path: Path) -> None:
    figure = per_class_ap_figure(MODELS[:3], np.full((3, 20), 0.5).tolist())
    png = save_figure(figure, tmp_path / "a" / "ap.png")
    jpg = save_figure(figure, tmp_path / "a" / "ap.jpg")
    with Image.open(png) as a, Image.open(jpg) as b:
        assert a.format == "PNG" and b.format == "JPEG"
    assert png.stat().st_size < 300_000


def test_pareto_throughput_error_bars_where_a_point_has_a_window_range() -> None:
    points = [ParetoPoint("ranged", 10.0, 0.6, 0.55, 0.65, 8.0, 13.0), ParetoPoint("plain", 20.0, 0.5, 0.45, 0.55)]
    figure = pareto_figure(points)
    assert _overlapping(figure) == []
    (ax,) = [ax for ax in figure.axes if ax.get_visible()]
    ranged, plain = ax.containers
    assert ranged.has_xerr and ranged.has_yerr and plain.has_yerr and not plain.has_xerr
    x_bars, _ = ranged.lines[2]  # the x bars first, then the y bars
    (left, _), (right, _) = x_bars.get_segments()[0]
    assert (left, right) == (8.0, 13.0)
    assert "slowest to fastest window" in ax.get_xlabel()
    assert "window" not in pareto_figure(points[1:]).axes[0].get_xlabel()  # no range: the label as before
