"""VOC multi-label classification as a torch Dataset: labels from ``voc.labels``, pixels from
``voc.images`` (or a ``voc.cache`` of resized images)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from voc.cache import ResizedImageCache, cached_image
from voc.config import LabelConfig
from voc.constants import POSITIVE, VOC_CLASSES
from voc.errors import VOCDataError
from voc.images import load_rgb
from voc.imagesets import find_voc_dir
from voc.labels import _load, label_frequencies, positive_counts

logger = logging.getLogger(__name__)

_SHOW = 5  # how many skipped ids a warning lists


class VOCClassification(Dataset):
    """PASCAL VOC as 20-class multi-label classification.

    Items are ``(image, target)``: a PIL RGB image (opened lazily, then ``transform``)
    and a float32 tensor [20] of 1 (present), 0 (absent), -1 (ignored). Construction
    checks that every JPEG exists (not that it decodes: see ``voc.images.find_bad_images``).

    ``labels`` says where labels come from, how difficult objects count, and whether only
    images with at least one positive label are kept (``voc.config.LabelConfig``; stored as
    ``label_config``). ``skip_bad_images`` drops ids whose JPEG or XML is missing instead of
    raising and records them in ``skipped`` as (id, reason); malformed files still raise.
    ``exclude`` maps ids to leave out (e.g. JPEGs that ``find_bad_images`` found undecodable) to
    the reason, which ``skipped`` records too.
    """

    class_names: tuple[str, ...] = VOC_CLASSES

    def __init__(
        self,
        root: str | Path,
        year: str | int = "2012",
        split: str = "train",
        *,
        labels: LabelConfig = LabelConfig(),
        transform: Callable[[Image.Image], Any] | None = None,
        skip_bad_images: bool = False,
        exclude: Mapping[str, str] | None = None,
    ) -> None:
        self.year = str(year)
        self.split = split
        self.label_config = labels
        self.transform = transform
        self.voc_dir = find_voc_dir(root, self.year)
        self._image_dir = self.voc_dir / "JPEGImages"
        ids, label_rows, skipped = _load(
            self.voc_dir, split, labels.source, labels.difficult, skip_missing=skip_bad_images
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
        if labels.positive_only:
            keep &= (label_rows == POSITIVE).any(axis=1)

        self.ids: list[str] = [i for i, k in zip(ids, keep, strict=False) if k]
        self.labels: np.ndarray = label_rows[keep]
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
            read = getattr(self.transform, "read", None)  # the transform's own decoder (voc.transforms)
            if read is not None:
                image = read(self.image_path(index))
            else:
                image = load_rgb(self.image_path(index), getattr(self.transform, "decode_size", None))
        if self.transform is not None:
            image = self.transform(image)
        return image, torch.tensor(self.labels[index], dtype=torch.float32)

    def positive_counts(self) -> np.ndarray:
        """Number of images labelled positive, per class (int64 [20])."""
        return positive_counts(self.labels)

    def label_frequencies(self) -> np.ndarray:
        """Share of images positive per class (float64 [20]), ignored labels left out
        (``voc.labels.label_frequencies``). A class with no labelled image gets 0."""
        return label_frequencies(self.labels)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(voc_dir={str(self.voc_dir)!r}, split={self.split!r}, "
            f"images={len(self)}, skipped={len(self.skipped)})"
        )
