"""Write tiny fake VOCdevkit trees for tests.

Usage::

    from voc_tree import write_voc_tree  # tests/ is on sys.path (rootdir conftest, no __init__.py)

    voc_dir = write_voc_tree(
        tmp_path,
        {"img_a": [("dog", False), ("person", True)], "img_b": [("cat", False)]},
        year="2012",
        splits={"train": ["img_a"], "val": ["img_b"]},
    )
    # voc_dir == tmp_path / "VOCdevkit" / "VOC2012"

For each id it writes ``JPEGImages/<id>.jpg`` (a tiny valid RGB JPEG) and
``Annotations/<id>.xml`` (one ``<object>`` per (class name, difficult) pair, written
with ElementTree), and for each split ``ImageSets/Main/<split>.txt`` plus the 20
``<class>_<split>.txt`` files with the devkit's values: 1 if the image has a
non-difficult object of the class, 0 if it has only difficult ones, -1 otherwise.
"""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from voc.constants import VOC_CLASSES

Objects = Sequence[tuple[str, bool]]


def write_voc_tree(
    root: Path,
    images: Mapping[str, Objects],
    *,
    year: str = "2012",
    splits: Mapping[str, Sequence[str]] | None = None,
    crlf: bool = False,
    jpegs: bool = True,
    annotations: bool = True,
    class_files: bool = True,
    image_size: tuple[int, int] = (16, 12),
) -> Path:
    """Write a fake ``root/VOCdevkit/VOC<year>`` and return that folder.

    ``images`` maps id -> [(class name, difficult), ...] (an empty list is an image with
    no objects). ``splits`` maps split name -> ids (default: ``{"train": all ids}``);
    split ids need not be in ``images`` (they then get neither JPEG nor XML, and -1 in
    the class files). ``crlf`` writes the ImageSets files with CRLF line endings.
    ``jpegs``/``annotations``/``class_files`` switch those parts off.
    """
    voc_dir = root / "VOCdevkit" / f"VOC{year}"
    main = voc_dir / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    if splits is None:
        splits = {"train": list(images)}
    for image_id, objects in images.items():
        if jpegs:
            write_jpeg(voc_dir / "JPEGImages" / f"{image_id}.jpg", image_size)
        if annotations:
            write_annotation(voc_dir / "Annotations" / f"{image_id}.xml", image_id, objects, image_size)
    newline = "\r\n" if crlf else "\n"
    for split, ids in splits.items():
        write_lines(main / f"{split}.txt", ids, newline)
        if class_files:
            for class_name in VOC_CLASSES:
                lines = [f"{i} {devkit_value(images.get(i, ()), class_name):2d}" for i in ids]
                write_lines(main / f"{class_name}_{split}.txt", lines, newline)
    return voc_dir


def devkit_value(objects: Objects, class_name: str) -> int:
    """The devkit's per-class value: 1 non-difficult object, 0 only difficult, -1 none."""
    flags = [difficult for name, difficult in objects if name == class_name]
    if not flags:
        return -1
    return 0 if all(flags) else 1


def write_jpeg(path: Path, size: tuple[int, int] = (16, 12)) -> Path:
    """A tiny valid RGB JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path, "JPEG")
    return path


def write_annotation(
    path: Path, image_id: str, objects: Objects, size: tuple[int, int] = (16, 12)
) -> Path:
    """A VOC-format annotation XML with one ``<object>`` per (name, difficult)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "folder").text = "VOC"
    ET.SubElement(annotation, "filename").text = f"{image_id}.jpg"
    size_el = ET.SubElement(annotation, "size")
    for tag, value in zip(("width", "height", "depth"), (*size, 3), strict=False):
        ET.SubElement(size_el, tag).text = str(value)
    for name, difficult in objects:
        obj = ET.SubElement(annotation, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(int(difficult))
        box = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), (1, 1, size[0], size[1]), strict=False):
            ET.SubElement(box, tag).text = str(value)
    ET.ElementTree(annotation).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_lines(path: Path, lines: Sequence[str], newline: str = "\n") -> Path:
    """Text lines, each ending with ``newline`` (bytes written as given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{line}{newline}" for line in lines).encode("utf-8"))
    return path


MIXED_IMAGES: dict[str, list[tuple[str, bool]]] = {
    "2008_000001": [("dog", False), ("cat", True)],
    "2008_000002": [("cat", False), ("cat", True)],
    "2008_000003": [],
    "2008_000004": [("chair", True)],
}
"""Four images covering the label cases: a positive beside a difficult-only class (dog, cat), a
positive with a difficult twin (cat), no object at all, and only a difficult object (chair)."""


def corrupt(path: Path, kind: str) -> None:
    """Break an image file: ``zero-bytes``, ``truncated`` (first half kept) or ``text``."""
    if kind == "zero-bytes":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("this is not a JPEG\n")
    else:
        raise ValueError(f"unknown corruption {kind!r}; use zero-bytes, truncated or text")


LINEAR_SIZE = (64, 48)
"""Width and height of :func:`linear_tree`'s images."""


def linear_tree(root: Path, n_train: int, n_val: int, seed: int = 0) -> tuple[Path, dict[str, list[tuple[str, bool]]]]:
    """A VOC2012 tree whose train image i holds class i % 20 (and maybe another), with distinct JPEGs
    whose colours follow their classes, so features differ and carry the labels."""
    rng = random.Random(seed)
    images: dict[str, list[tuple[str, bool]]] = {}
    for i in range(n_train + n_val):
        objects = [(VOC_CLASSES[i % 20], False)]
        if rng.random() < 0.5:
            objects.append((rng.choice(VOC_CLASSES), rng.random() < 0.2))
        images[f"im{i:03d}"] = objects
    ids = list(images)
    write_voc_tree(root, images, splits={"train": ids[:n_train], "val": ids[n_train:]}, image_size=LINEAR_SIZE)
    noise = np.random.default_rng(seed)
    for image_id, objects in images.items():
        pixels = noise.integers(0, 60, size=(LINEAR_SIZE[1], LINEAR_SIZE[0], 3))
        for name, _ in objects:
            c = VOC_CLASSES.index(name)
            pixels[:, :, c % 3] += 40 + 9 * c
        jpeg = root / "VOCdevkit" / "VOC2012" / "JPEGImages" / f"{image_id}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(jpeg, "JPEG")
    return root, images


def linear_flags(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--models", "test_resnet", "--data", str(root), "--year", "2012", "--train-split", "train",
        "--eval-split", "val", "--resize", "32", "--pretrained", "none", "--num-workers", "0", "--n-jobs", "1",
        "--no-report", "--out", str(out), *extra,
    ]


def cached_features(record: dict) -> dict[str, tuple[np.ndarray, list[str]]]:
    """A frozen run's cached features by split, read back from the record's ``features.cache``:
    split -> (the ``[N, D]`` array, the image ids in its row order)."""
    features = {}
    for split, entry in record["features"]["cache"].items():
        npy = Path(entry["path"])
        features[split] = (np.load(npy), json.loads(npy.with_suffix(".json").read_text())["ids"])
    return features
