"""Per-class galleries: a model's k highest- and k lowest-scored eval images of a class, with their
scores and true labels, as one grid image per class (the course project's top-5 / bottom-5 views)."""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from bench.report.plots import new_figure, save_figure
from voc.constants import IGNORED, POSITIVE, VOC_CLASSES

DEFAULT_K = 5
"""Images per gallery row: the k highest- and k lowest-scored (``--gallery-k``)."""
THUMBNAIL_PX = 192
"""Longest side of a gallery thumbnail."""


@dataclass(frozen=True)
class GalleryItem:
    """One eval image in a gallery row."""

    image_id: str
    score: float
    label: int
    """This class's label of the image: 1, 0, or -1 (ignored, e.g. only difficult objects)."""
    present: tuple[str, ...]
    """Every class the image is labelled with."""


def select(
    ids: Sequence[str], scores: np.ndarray, labels: np.ndarray, class_index: int, k: int = DEFAULT_K,
    class_names: Sequence[str] = VOC_CLASSES,
) -> tuple[list[GalleryItem], list[GalleryItem]]:
    """The ``k`` highest-scored images of a class (best first) and the ``k`` lowest (lowest first);
    ties broken by image id so the choice is stable."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    column = scores[:, class_index]
    order_desc = sorted(range(len(ids)), key=lambda i: (-column[i], ids[i]))
    order_asc = sorted(range(len(ids)), key=lambda i: (column[i], ids[i]))

    def item(i: int) -> GalleryItem:
        present = tuple(name for c, name in enumerate(class_names) if labels[i, c] == POSITIVE)
        return GalleryItem(ids[i], float(column[i]), int(labels[i, class_index]), present)

    return [item(i) for i in order_desc[:k]], [item(i) for i in order_asc[:k]]


@functools.lru_cache(maxsize=256)
def _thumbnail(path: Path) -> np.ndarray | None:
    """The image shrunk to THUMBNAIL_PX (cached: one image shows up in several classes' galleries)."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))  # JPEG: decode at a reduced scale
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            return np.asarray(image)
    except OSError:
        return None


def _verdict(label: int) -> str:
    return {POSITIVE: "present", IGNORED: "ignored"}.get(label, "absent")


def gallery_figure(
    model: str, class_name: str, top: Sequence[GalleryItem], bottom: Sequence[GalleryItem],
    image_path: Callable[[str], Path],
) -> Figure:
    """Two rows: the highest-scored images, then the lowest. Each panel: the image, its score for
    ``class_name`` and whether the class is present, and the image's true labels."""
    k = max(len(top), len(bottom), 1)
    figure = new_figure(2.3 * k, 6.4)
    axes = figure.subplots(2, k, squeeze=False)
    for row, (title, items) in enumerate((("highest", top), ("lowest", bottom))):
        for col in range(k):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(items):
                ax.set_visible(False)
                continue
            item = items[col]
            pixels = _thumbnail(image_path(item.image_id))
            if pixels is None:
                ax.text(0.5, 0.5, "image not readable", ha="center", va="center", fontsize=8, transform=ax.transAxes)
            else:
                ax.imshow(pixels)
            hit = item.label == IGNORED or (item.label == POSITIVE) == (row == 0)
            ax.set_title(f"{item.image_id}\nscore {item.score:.3g} · {_verdict(item.label)}", fontsize=8,
                         color="black" if hit else "firebrick")
            labels = ", ".join(item.present) or "(no class)"
            ax.set_xlabel(textwrap.fill(f"labels: {labels}", 26), fontsize=7)
        axes[row][0].set_ylabel(f"{title} {len(items)}", fontsize=10)
    figure.suptitle(f"{model}: {class_name}, the {len(top)} highest- and {len(bottom)} lowest-scored eval images "
                    "(red: a miss)", fontsize=10)
    return figure


def write_class_gallery(
    path: str | Path, model: str, class_index: int, ids: Sequence[str], scores: np.ndarray, labels: np.ndarray,
    image_path: Callable[[str], Path], k: int = DEFAULT_K,
) -> Path:
    """Select, draw and save one class's gallery (JPEG for a ``.jpg`` path: photos compress ~10x
    better than as PNG)."""
    top, bottom = select(ids, scores, labels, class_index, k)
    return save_figure(gallery_figure(model, VOC_CLASSES[class_index], top, bottom, image_path), path)
