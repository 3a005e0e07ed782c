"""Decode-once cache: a split's images, resized as the protocol resizes them, in one memory-mapped file.

Repeated epochs then read uint8 pixels instead of decoding and resizing JPEGs. The file lives on
disk and is memory-mapped, so a cache larger than RAM works (VOC2012 at 400 px is several GB).
A cache is keyed by the images, their files' sizes and times, and the resize settings; a changed
key builds a new cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from voc.images import load_rgb
from voc.io import atomic_output, atomic_write
from voc.transforms import INTERPOLATIONS, resized_size

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def _key(paths: Sequence[Path], resize: int, crop_mode: str, interpolation: str) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{resize}|{crop_mode}|{interpolation}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class ResizedImageCache:
    """uint8 RGB images ``[h, w, 3]`` at the resized size, one memory-mapped file for a list of paths.

    Build with :meth:`open_or_build`; ``cache[i]`` is image ``i`` as a read-only array view.
    """

    def __init__(self, data_path: Path, shapes: np.ndarray, offsets: np.ndarray) -> None:
        self.data_path = data_path
        self.shapes = shapes
        self.offsets = offsets
        self._data: np.memmap | None = None

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int) -> np.ndarray:
        if self._data is None:  # opened lazily, so each DataLoader worker maps the file itself
            self._data = np.memmap(self.data_path, dtype=np.uint8, mode="r")
        h, w = (int(v) for v in self.shapes[index])
        start = int(self.offsets[index])
        return self._data[start : start + h * w * 3].reshape(h, w, 3)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_data": None}

    @classmethod
    def open_or_build(
        cls,
        cache_dir: str | Path,
        paths: Sequence[str | Path],
        *,
        resize: int,
        crop_mode: str,
        interpolation: str = "bilinear",
    ) -> ResizedImageCache:
        """The cache of ``paths`` in ``cache_dir``: reused when its key matches, else built (one
        decode per image) and written atomically."""
        paths = [Path(p) for p in paths]
        cache_dir = Path(cache_dir)
        key = _key(paths, resize, crop_mode, interpolation)
        data_path, index_path = cache_dir / f"{key}.u8", cache_dir / f"{key}.json"
        if data_path.is_file() and index_path.is_file():
            index = json.loads(index_path.read_text(encoding="utf-8"))
            return cls(data_path, np.array(index["shapes"], dtype=np.int64), np.array(index["offsets"], dtype=np.int64))
        return cls._build(data_path, index_path, paths, resize, crop_mode, interpolation)

    @classmethod
    def _build(
        cls,
        data_path: Path,
        index_path: Path,
        paths: Sequence[Path],
        resize: int,
        crop_mode: str,
        interpolation: str,
    ) -> ResizedImageCache:
        """Decode and resize every image once into ``data_path``, then write the index (shapes and
        byte offsets) to ``index_path``; both atomically, the index last, so a cache whose index
        exists is complete."""
        log.info("Caching %d resized images in %s ...", len(paths), data_path)
        shapes, offsets, offset = [], [], 0
        with atomic_output(data_path, "wb") as fh:
            for path in paths:
                image = load_rgb(path, lambda w, h: resized_size(w, h, resize, crop_mode))
                size = resized_size(image.width, image.height, resize, crop_mode)
                if image.size != size:
                    image = image.resize(size, INTERPOLATIONS[interpolation])
                pixels = np.asarray(image, dtype=np.uint8)
                fh.write(pixels.tobytes())
                shapes.append(pixels.shape[:2])
                offsets.append(offset)
                offset += pixels.size
        atomic_write(index_path, json.dumps({"shapes": [list(s) for s in shapes], "offsets": offsets}))
        return cls(data_path, np.array(shapes, dtype=np.int64), np.array(offsets, dtype=np.int64))


def cached_image(cache: ResizedImageCache, index: int) -> Image.Image:
    """Image ``index`` of the cache as a PIL RGB image (a copy: transforms may modify it)."""
    return Image.fromarray(np.array(cache[index]))
