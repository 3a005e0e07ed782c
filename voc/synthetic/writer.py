"""Writes the synthetic VOC tree: each image (:func:`voc.synthetic.render.render_synthetic_image`)
as a JPEG at a fixed quality with its ``Annotations`` XML, the ``ImageSets/Main`` lists in the real
files' formats, and last the marker ``root/synthetic.json`` that makes the tree complete
(:func:`is_complete_synthetic_voc`). Every file is written atomically (``voc.io``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO
from pathlib import Path

from PIL import Image

from voc.constants import VOC_CLASSES, YEARS
from voc.io import atomic_write
from voc.synthetic.render import SPLIT_CODES, Box, SyntheticObject, render_synthetic_image

logger = logging.getLogger(__name__)

SYNTHETIC_GENERATOR_VERSION = 1
"""Bump whenever the generated files change, so cached trees are regenerated."""

MARKER_NAME = "synthetic.json"
"""The marker file in ``root``: which trees are complete, and with which arguments."""

JPEG_QUALITY = 90
"""Fixed, so the same pixels always give the same JPEG bytes."""

# --- layout --------------------------------------------------------------------------------

ID_STRIDE = 3
MAX_IMAGE_NUMBER = 999_999
LIST_EOL: dict[str, str] = {"2007": "\r\n", "2012": "\n"}
"""Line ending of ImageSets files (the real VOC2007 lists are CRLF)."""
XML_OWNER: tuple[str, ...] = (
    "\t<owner>", "\t\t<flickrid>voc-bench</flickrid>", "\t\t<name>synthetic</name>", "\t</owner>"
)
"""The ``<owner>`` block that the VOC2007 files have (VOC2012 files have none)."""
XML_SOURCE: dict[str, tuple[str, str]] = {
    "2007": ("The VOC2007 Database", "PASCAL VOC2007"),
    "2012": ("The VOC2012 Database", "PASCAL VOC2012"),
}


def image_id(year: str, split: str, index: int) -> str:
    """The VOC id of image ``index`` of ``split``: ``2012_000001`` or ``000001`` style."""
    number = ID_STRIDE * index + SPLIT_CODES[split]
    if number > MAX_IMAGE_NUMBER:
        raise ValueError(f"Too many synthetic images: id number {number} exceeds {MAX_IMAGE_NUMBER}.")
    return f"{year}_{number:06d}" if year == "2012" else f"{number:06d}"


def annotation_xml(year: str, image_name: str, size: tuple[int, int], objects: Iterable[SyntheticObject]) -> str:
    """The VOC ``Annotations/<id>.xml`` text, tab-indented like the real files."""
    database, annotation = XML_SOURCE[year]
    lines = [
        "<annotation>",
        f"\t<folder>VOC{year}</folder>",
        f"\t<filename>{image_name}</filename>",
        "\t<source>",
        f"\t\t<database>{database}</database>",
        f"\t\t<annotation>{annotation}</annotation>",
        "\t\t<image>synthetic</image>",
        "\t</source>",
        *(XML_OWNER if year == "2007" else ()),
        "\t<size>",
        f"\t\t<width>{size[0]}</width>",
        f"\t\t<height>{size[1]}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>0</segmented>",
    ]
    for obj in objects:
        lines += [
            "\t<object>",
            f"\t\t<name>{obj.name}</name>",
            f"\t\t<pose>{obj.pose}</pose>",
            f"\t\t<truncated>{int(obj.truncated)}</truncated>",
            f"\t\t<difficult>{int(obj.difficult)}</difficult>",
            *_bndbox_lines(obj.box, "\t\t"),
        ]
        for part, box in obj.parts:
            lines += ["\t\t<part>", f"\t\t\t<name>{part}</name>", *_bndbox_lines(box, "\t\t\t"), "\t\t</part>"]
        lines.append("\t</object>")
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _bndbox_lines(box: Box, indent: str) -> list[str]:
    """The ``<bndbox>`` element of a box, one tag a line."""
    xmin, ymin, xmax, ymax = box
    return [
        f"{indent}<bndbox>",
        f"{indent}\t<xmin>{xmin}</xmin>",
        f"{indent}\t<ymin>{ymin}</ymin>",
        f"{indent}\t<xmax>{xmax}</xmax>",
        f"{indent}\t<ymax>{ymax}</ymax>",
        f"{indent}</bndbox>",
    ]


def image_labels(objects: Iterable[SyntheticObject]) -> tuple[int, ...]:
    """Per-class ImageSets values: 1 non-difficult object, 0 only difficult ones, -1 none."""
    labels = dict.fromkeys(VOC_CLASSES, -1)
    for obj in objects:
        labels[obj.name] = max(labels[obj.name], 0 if obj.difficult else 1)
    return tuple(labels[c] for c in VOC_CLASSES)


def _encode_jpeg(img: Image.Image) -> bytes:
    """JPEG bytes at a fixed quality (deterministic for the same pixels)."""
    buf = BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _generate_image(task: tuple[str, str, str, int, int]) -> tuple[int, ...]:
    """Renders and writes one image and its XML; returns its per-class labels."""
    voc_dir, year, split, index, seed = task
    img, objects = render_synthetic_image(seed, split, index)
    image_name = image_id(year, split, index)
    root = Path(voc_dir)
    atomic_write(root / "JPEGImages" / f"{image_name}.jpg", _encode_jpeg(img))
    xml = annotation_xml(year, f"{image_name}.jpg", img.size, objects)
    atomic_write(root / "Annotations" / f"{image_name}.xml", xml.encode("utf-8"))
    return image_labels(objects)


def _write_imagesets(main: Path, year: str, labels: dict[str, dict[str, tuple[int, ...]]]) -> None:
    """Writes ``<split>.txt`` and ``<class>_<split>.txt`` for every split in ``labels``."""
    eol = LIST_EOL[year]
    for split, by_id in sorted(labels.items()):
        ids = sorted(by_id)
        atomic_write(main / f"{split}.txt", "".join(f"{i}{eol}" for i in ids).encode("ascii"))
        for c, cls in enumerate(VOC_CLASSES):
            text = "".join(f"{i} {by_id[i][c]:2d}{eol}" for i in ids)
            atomic_write(main / f"{cls}_{split}.txt", text.encode("ascii"))


def _remove_lists(main: Path, split: str) -> None:
    """Removes a split's lists left over from an earlier generation with other arguments."""
    for name in [f"{split}.txt", *(f"{cls}_{split}.txt" for cls in VOC_CLASSES)]:
        (main / name).unlink(missing_ok=True)


def _marker_args(n_train: int, n_val: int, n_test: int, year: str, seed: int) -> dict[str, int | str]:
    """What the marker records about one tree."""
    return {"n_train": n_train, "n_val": n_val, "n_test": n_test, "year": year, "seed": seed}


def _read_marker(root: Path) -> dict:
    """The marker's content, or an empty marker when absent, unreadable or from another version."""
    try:
        data = json.loads((root / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != SYNTHETIC_GENERATOR_VERSION:
        return {}
    return data


def _write_marker(root: Path, trees: dict) -> None:
    """Writes (or removes, when no tree is complete) ``root/synthetic.json``."""
    if not trees:
        (root / MARKER_NAME).unlink(missing_ok=True)
        return
    data = {"generator": "voc.synthetic", "version": SYNTHETIC_GENERATOR_VERSION, "trees": trees}
    atomic_write(root / MARKER_NAME, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _check_args(n_train: int, n_val: int, n_test: int, year: str, seed: int, workers: int) -> None:
    """Raises ValueError naming a bad argument and the valid values."""
    if year not in YEARS:
        raise ValueError(f"Unknown VOC year {year!r}. Valid years are {YEARS}.")
    if n_train < 1 or n_val < 1 or n_test < 0:
        raise ValueError(f"Need n_train >= 1, n_val >= 1, n_test >= 0; got {n_train}, {n_val}, {n_test}.")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}.")


DEFAULT_ROOTS: dict[str, Path] = {"2012": Path("data") / "synthetic", "2007": Path("data") / "synthetic-voc2007"}
"""Where ``python -m voc synth`` writes each year's set by default, and where ``benchmark.py`` looks."""
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    "2012": {"n_train": 1600, "n_val": 400, "n_test": 0},
    "2007": {"n_train": 2501, "n_val": 2510, "n_test": 4952},
}
"""Each year's default split sizes: 2012, the CPU-sized set of the embedded default run; 2007, the
real VOC2007 sizes (trainval 5,011, test 4,952), so that the VOC07 protocols run at their size."""


def generate_synthetic_voc(
    root: str | Path,
    n_train: int,
    n_val: int,
    n_test: int = 0,
    *,
    year: str = "2012",
    seed: int = 0,
    workers: int = 1,
) -> Path:
    """Writes a synthetic ``root/VOCdevkit/VOC<year>`` tree and returns its path.

    Splits ``train`` and ``val`` (and ``trainval``), plus ``test`` when ``n_test > 0``. The
    output depends only on (n_train, n_val, n_test, year, seed), not on ``workers``.
    ``root/synthetic.json`` is written last; see :func:`is_complete_synthetic_voc`.
    """
    year = str(year)
    _check_args(n_train, n_val, n_test, year, seed, workers)
    root = Path(root)
    voc_dir = root / "VOCdevkit" / f"VOC{year}"
    main = voc_dir / "ImageSets" / "Main"
    for sub in (voc_dir / "JPEGImages", voc_dir / "Annotations", main):
        sub.mkdir(parents=True, exist_ok=True)
    trees = _read_marker(root).get("trees", {})
    trees.pop(year, None)
    _write_marker(root, trees)

    counts = {"train": n_train, "val": n_val, "test": n_test}
    tasks = [(str(voc_dir), year, split, i, seed) for split in ("train", "val", "test") for i in range(counts[split])]
    start = time.perf_counter()
    if workers == 1:
        results = [_generate_image(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_generate_image, tasks, chunksize=max(1, len(tasks) // (8 * workers))))
    elapsed = time.perf_counter() - start
    logger.info("Generated %d synthetic images in %.1f s (%.1f ms/image, %d workers) under %s",
                len(tasks), elapsed, 1000 * elapsed / max(1, len(tasks)), workers, voc_dir)

    labels: dict[str, dict[str, tuple[int, ...]]] = {s: {} for s in ("train", "val", "test") if counts[s] > 0}
    for (_, _, split, index, _), lab in zip(tasks, results, strict=False):
        labels[split][image_id(year, split, index)] = lab
    labels["trainval"] = {**labels["train"], **labels["val"]}
    if n_test == 0:
        _remove_lists(main, "test")
    _write_imagesets(main, year, labels)

    trees = _read_marker(root).get("trees", {})
    trees[year] = _marker_args(n_train, n_val, n_test, year, seed)
    _write_marker(root, trees)
    return voc_dir


def is_complete_synthetic_voc(
    root: str | Path, n_train: int, n_val: int, n_test: int = 0, year: str = "2012", seed: int = 0
) -> bool:
    """Whether ``root`` holds a finished tree generated by this version with these arguments."""
    root = Path(root)
    year = str(year)
    tree = _read_marker(root).get("trees", {}).get(year)
    if tree != _marker_args(n_train, n_val, n_test, year, seed):
        return False
    return (root / "VOCdevkit" / f"VOC{year}" / "ImageSets" / "Main" / "trainval.txt").is_file()
