"""VOC multi-label classification: label loading, a torch Dataset, and an image decode check."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError
from torch.utils.data import Dataset

from voc.annotations import difficult_only_label, labels_from_objects, parse_annotation
from voc.cache import ResizedImageCache, cached_image
from voc.constants import IGNORED, LABEL_SOURCES, NUM_CLASSES, POSITIVE, VOC_CLASSES
from voc.errors import VOCDataError
from voc.imagesets import find_voc_dir, read_class_labels, read_split_ids

logger = logging.getLogger(__name__)

_SHOW = 5  # how many skipped ids a warning lists


def load_labels(
    root: str | Path,
    year: str | int,
    split: str,
    source: str = "annotations",
    difficult: str = "negative",
) -> tuple[list[str], np.ndarray]:
    """Image ids and int8 labels [N, 20] of a VOC split.

    ``source="annotations"`` reads ``<split>.txt`` and each id's ``Annotations/<id>.xml``;
    ``source="imagesets"`` reads only the per-class ``ImageSets/Main`` files. Raises
    VOCDataError for missing or bad files, ValueError for an unknown source or policy.
    """
    ids, labels, _ = _load(find_voc_dir(root, year), split, source, difficult, skip_missing=False)
    return ids, labels


def _load(
    voc_dir: Path, split: str, source: str, difficult: str, *, skip_missing: bool
) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """Ids, labels, and (id, reason) of ids dropped for a missing XML when ``skip_missing``."""
    if source not in LABEL_SOURCES:
        raise ValueError(f"Unknown label source {source!r}. Valid values are {list(LABEL_SOURCES)}.")
    difficult_only_label(difficult)  # validates the policy before any file is read
    if source == "imagesets":
        ids, labels = read_class_labels(voc_dir, split, difficult)
        return ids, labels, []

    kept: list[str] = []
    rows: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    for image_id in read_split_ids(voc_dir, split):
        xml = voc_dir / "Annotations" / f"{image_id}.xml"
        if not xml.is_file():
            if skip_missing:
                skipped.append((image_id, f"annotation not found: {xml}"))
                continue
            raise VOCDataError(f"annotation for id {image_id!r} (listed in {split}.txt) not found", xml)
        kept.append(image_id)
        rows.append(labels_from_objects(parse_annotation(xml).objects, difficult))
    labels = np.stack(rows) if rows else np.empty((0, NUM_CLASSES), dtype=np.int8)
    return kept, labels, skipped


class VOCClassification(Dataset):
    """PASCAL VOC as 20-class multi-label classification.

    Items are ``(image, target)``: a PIL RGB image (opened lazily, then ``transform``)
    and a float32 tensor [20] of 1 (present), 0 (absent), -1 (ignored). Construction
    checks that every JPEG exists (not that it decodes: see ``find_bad_images``).

    ``positive_only`` keeps only images with at least one positive label.
    ``skip_bad_images`` drops ids whose JPEG or XML is missing instead of raising and
    records them in ``skipped`` as (id, reason); malformed files still raise. ``exclude`` maps
    ids to leave out (e.g. JPEGs that ``find_bad_images`` found undecodable) to the reason,
    which ``skipped`` records too.
    """

    class_names: tuple[str, ...] = VOC_CLASSES

    def __init__(
        self,
        root: str | Path,
        year: str | int = "2012",
        split: str = "train",
        *,
        label_source: str = "annotations",
        difficult: str = "negative",
        transform: Callable[[Image.Image], Any] | None = None,
        positive_only: bool = False,
        skip_bad_images: bool = False,
        exclude: Mapping[str, str] | None = None,
    ) -> None:
        self.year = str(year)
        self.split = split
        self.transform = transform
        self.voc_dir = find_voc_dir(root, self.year)
        self._image_dir = self.voc_dir / "JPEGImages"
        ids, labels, skipped = _load(
            self.voc_dir, split, label_source, difficult, skip_missing=skip_bad_images
        )

        keep = np.ones(len(ids), dtype=bool)
        for row, image_id in enumerate(ids):
            jpeg = self._image_dir / f"{image_id}.jpg"
            if jpeg.is_file():
                continue
            if not skip_bad_images:
                raise VOCDataError(f"image for id {image_id!r} (listed in {split}.txt) not found", jpeg)
            skipped.append((image_id, f"image not found: {jpeg}"))
            keep[row] = False
        for row, image_id in enumerate(ids):
            if exclude and image_id in exclude and keep[row]:
                skipped.append((image_id, exclude[image_id]))
                keep[row] = False
        if positive_only:
            keep &= (labels == POSITIVE).any(axis=1)

        self.ids: list[str] = [i for i, k in zip(ids, keep) if k]
        self.labels: np.ndarray = labels[keep]
        self.skipped: list[tuple[str, str]] = skipped
        self.image_cache: ResizedImageCache | None = None
        """Set (e.g. by ``VOCDataModule``) to read resized pixels instead of decoding JPEGs."""
        if skipped:
            logger.warning(
                "VOC%s %s: skipped %d id(s) with missing files, e.g. %s",
                self.year,
                split,
                len(skipped),
                ", ".join(i for i, _ in skipped[:_SHOW]),
            )

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, index: int) -> Path:
        """Path of the JPEG of item ``index``."""
        return self._image_dir / f"{self.ids[index]}.jpg"

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        if self.image_cache is not None:
            image: Any = cached_image(self.image_cache, index)
        else:
            image = load_rgb(self.image_path(index), getattr(self.transform, "decode_size", None))
        if self.transform is not None:
            image = self.transform(image)
        return image, torch.tensor(self.labels[index], dtype=torch.float32)

    def positive_counts(self) -> np.ndarray:
        """Number of images labelled positive, per class (int64 [20])."""
        return (self.labels == POSITIVE).sum(axis=0).astype(np.int64)

    def label_frequencies(self) -> np.ndarray:
        """Share of images positive per class (float64 [20]), ignored labels left out.

        A class with no labelled image gets 0.
        """
        labelled = (self.labels != IGNORED).sum(axis=0)
        return np.divide(
            self.positive_counts(), labelled, out=np.zeros(NUM_CLASSES), where=labelled > 0
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(voc_dir={str(self.voc_dir)!r}, split={self.split!r}, "
            f"images={len(self)}, skipped={len(self.skipped)})"
        )


@contextmanager
def _strict_truncation() -> Iterator[None]:
    """Make PIL raise on truncated images for the duration, whatever the caller set."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _describe(err: Exception) -> str:
    if isinstance(err, UnidentifiedImageError):  # its message repeats the path
        return "image does not decode: not an image file PIL recognises (empty, or another format)"
    return f"image does not decode: {err}"


def load_rgb(path: str | Path, decode_size: Callable[[int, int], tuple[int, int]] | None = None) -> Image.Image:
    """Decode an image as RGB; VOCDataError naming the file if it does not decode.

    ``decode_size(width, height)`` may give the smallest size the caller needs: a JPEG is then
    decoded at the smallest power-of-two reduction that still covers it (PIL ``draft``), which
    is several times faster for small training sizes.
    """
    try:
        with _strict_truncation(), Image.open(path) as image:
            if decode_size is not None:
                image.draft("RGB", decode_size(image.width, image.height))
            return image.convert("RGB")
    except FileNotFoundError:
        raise VOCDataError("image file not found", path) from None
    except _DECODE_ERRORS as err:
        raise VOCDataError(_describe(err), path) from None


def _decode_problem(path: Path) -> str | None:
    """Why ``path`` does not decode, or None.

    JPEGs are decoded at 1/8 scale (``draft``): every byte is still read, so truncation
    is caught, at about 2/3 of the cost of a full decode.
    """
    try:
        with Image.open(path) as image:
            image.draft(None, (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except FileNotFoundError:
        return f"{path}: image file not found"
    except _DECODE_ERRORS as err:
        return f"{path}: {_describe(err)}"
    return None


def find_bad_images(dataset_or_paths: VOCClassification | Iterable[str | Path]) -> list[tuple[str, str]]:
    """(id, reason) for each image that is missing or does not decode, in input order.

    Takes a VOCClassification or image paths (the id is then the file's stem). Each image
    is decoded at 1/8 scale (``Image.verify`` alone misses truncated JPEGs): about 1-1.5 ms
    per 500x375 VOC JPEG on one core, so ~15-25 s for all of VOC2012 trainval.
    """
    if isinstance(dataset_or_paths, VOCClassification):
        paths = [dataset_or_paths.image_path(i) for i in range(len(dataset_or_paths))]
        ids = list(dataset_or_paths.ids)
    else:
        paths = [Path(p) for p in dataset_or_paths]
        ids = [p.stem for p in paths]
    with _strict_truncation():
        problems = [_decode_problem(p) for p in paths]
    bad = [(i, reason) for i, reason in zip(ids, problems) if reason is not None]
    if bad:
        logger.warning("%d of %d images do not decode, e.g. %s", len(bad), len(paths), bad[0][1])
    return bad
