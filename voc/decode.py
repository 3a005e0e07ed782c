"""Decoding VOC JPEGs to uint8 tensors with ``torchvision.io``: one file at a time in a loader worker
(libjpeg-turbo; the ``decode="torchvision"`` path of ``voc.transforms``), or a batch of encoded files
at once onto the compute device (nvJPEG on CUDA; the ``decode="device"`` path).
``voc.images.load_rgb`` is the PIL path."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file

from voc.errors import VOCDataError

_CPP_LOCATION = re.compile(r"^.*?\.(?:cpp|h):\d+, ")
"""The ``function, /path/file.cpp:123, `` prefix of torchvision's C++ error messages."""


_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"
"""The start of the warning torchvision 0.29 gives on every call of its image codecs, which still
work there (and are what the ``torchvision`` and ``device`` decode paths are: the version is pinned)."""


def _reason(err: Exception) -> str:
    return _CPP_LOCATION.sub("", str(err)).strip()


@contextmanager
def _codecs() -> Iterator[None]:
    """torchvision 0.29 deprecates its image codecs (docs/performance.md): no warning on every call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATION, category=DeprecationWarning)
        yield


def read_rgb_tensor(path: str | Path) -> torch.Tensor:
    """The image at ``path`` as a uint8 RGB tensor ``[3, H, W]`` (``torchvision.io.decode_image``:
    JPEG, PNG, WebP or GIF; grey and CMYK converted to RGB); VOCDataError naming the file if it is
    missing or does not decode (a truncated JPEG too)."""
    data = read_encoded(path)
    try:
        with _codecs():
            return decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError as err:
        raise VOCDataError(f"image does not decode (torchvision): {_reason(err)}", path) from None


def read_encoded(path: str | Path) -> torch.Tensor:
    """The bytes of the file at ``path``, undecoded, as a uint8 tensor ``[N]`` (what
    :func:`decode_jpeg_batch` takes); VOCDataError naming the file if it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise VOCDataError("image file not found", path)
    try:
        with _codecs():
            return read_file(str(path))
    except RuntimeError as err:  # an empty file
        raise VOCDataError(f"image does not decode (torchvision): {_reason(err)}", path) from None


def decode_jpeg_batch(
    encoded: Sequence[torch.Tensor], device: torch.device | str, paths: Sequence[str | Path] | None = None
) -> list[torch.Tensor]:
    """Encoded JPEGs (:func:`read_encoded`, on the CPU) to uint8 RGB tensors ``[3, H, W]`` on
    ``device``, in one ``torchvision.io.decode_jpeg`` call over the whole list: nvJPEG's batched
    decoder on CUDA, libjpeg-turbo on the CPU (the pixels of :func:`read_rgb_tensor`, which calls
    the same decoder). Grey JPEGs come out as RGB. When the batch does not decode, each image is
    decoded alone to find the one that does not, and VOCDataError names its file (``paths[i]``;
    without ``paths``, its position in the batch)."""
    device = torch.device(device)
    with _codecs():
        try:
            return list(decode_jpeg(list(encoded), mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            pass
        for i, data in enumerate(encoded):  # the batch failed: find the image that does not decode
            try:
                decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
            except RuntimeError as err:
                what = "image" if paths is not None else f"image {i} of the batch"
                raise VOCDataError(f"{what} does not decode as a JPEG (torchvision, {device.type}): {_reason(err)}",
                                   None if paths is None else paths[i]) from None
    raise VOCDataError(f"a batch of {len(encoded)} JPEGs does not decode, though each image does alone")
