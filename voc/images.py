"""Decoding VOC JPEGs: one image as RGB (:func:`load_rgb`), and a check that every image of a list
decodes (:func:`find_bad_images`). Torch-free."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image, ImageFile, UnidentifiedImageError

from voc.errors import VOCDataError

logger = logging.getLogger(__name__)

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
"""What PIL raises for a file that is not a decodable image (truncated, another format, ...)."""


@runtime_checkable
class ImageList(Protocol):
    """Anything with image ids and their paths, e.g. ``voc.dataset.VOCClassification``."""

    ids: Sequence[str]

    def image_path(self, index: int) -> Path: ...


@contextmanager
def _strict_truncation() -> Iterator[None]:
    """Make PIL raise on truncated images for the duration, whatever the caller set."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _decode_error_text(err: Exception) -> str:
    """Why an image does not decode, from the error PIL raised (without repeating the path)."""
    if isinstance(err, UnidentifiedImageError):  # its message repeats the path
        return "image does not decode: not an image file PIL recognises (empty, or another format)"
    return f"image does not decode: {err}"


def load_rgb(path: str | Path, decode_size: Callable[[int, int], tuple[int, int]] | None = None) -> Image.Image:
    """Decode an image as RGB; VOCDataError naming the file if it is missing or does not decode
    (a truncated JPEG too, whatever ``ImageFile.LOAD_TRUNCATED_IMAGES`` says).

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
        raise VOCDataError(_decode_error_text(err), path) from None


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
        return f"{path}: {_decode_error_text(err)}"
    return None


def _cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def find_bad_images(
    images: ImageList | Iterable[str | Path], ids: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """(id, reason) for each image that is missing or does not decode, in input order.

    ``images`` is anything with ``ids`` and ``image_path(i)`` (a ``VOCClassification``), or image
    paths; for paths, ``ids`` names them (default: each file's stem). Each image is decoded at
    1/8 scale (``Image.verify`` alone misses truncated JPEGs), one thread per core: about 1-1.5 ms
    per 500x375 VOC JPEG on one core, so ~15-25 s for all of VOC2012 trainval on one core. Raises
    ValueError when ``ids`` is given with an image list, or does not match the paths in number.
    """
    if isinstance(images, ImageList):
        if ids is not None:
            raise ValueError("ids are taken from the image list itself; pass ids only with paths")
        ids = list(images.ids)
        paths = [images.image_path(i) for i in range(len(ids))]
    else:
        paths = [Path(p) for p in images]
        ids = [p.stem for p in paths] if ids is None else list(ids)
        if len(ids) != len(paths):
            raise ValueError(f"{len(ids)} ids for {len(paths)} image paths: give one id per path")
    with _strict_truncation(), ThreadPoolExecutor(max_workers=_cores()) as pool:
        problems = list(pool.map(_decode_problem, paths))  # PIL decodes without the GIL: one thread a core
    bad = [(i, reason) for i, reason in zip(ids, problems, strict=False) if reason is not None]
    if bad:
        logger.warning("%d of %d images do not decode, e.g. %s", len(bad), len(paths), bad[0][1])
    return bad
