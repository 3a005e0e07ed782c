"""Decoding VOC JPEGs to uint8 tensors with ``torchvision.io`` (libjpeg-turbo on the CPU), the
``decode="torchvision"`` path of ``voc.transforms``; ``voc.images.load_rgb`` is the PIL path."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image, read_file

from voc.errors import VOCDataError

_CPP_LOCATION = re.compile(r"^.*?\.(?:cpp|h):\d+, ")
"""The ``function, /path/file.cpp:123, `` prefix of torchvision's C++ error messages."""


_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"
"""The start of the warning torchvision 0.29 gives on every call of its image codecs, which still
work there (and are what the ``torchvision`` decode path is: the version is pinned)."""


def _reason(err: Exception) -> str:
    return _CPP_LOCATION.sub("", str(err)).strip()


def read_rgb_tensor(path: str | Path) -> torch.Tensor:
    """The image at ``path`` as a uint8 RGB tensor ``[3, H, W]`` (``torchvision.io.decode_image``:
    JPEG, PNG, WebP or GIF; grey and CMYK converted to RGB); VOCDataError naming the file if it is
    missing or does not decode (a truncated JPEG too)."""
    path = Path(path)
    if not path.is_file():
        raise VOCDataError("image file not found", path)
    try:
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its image codecs (README, Speed)
            warnings.filterwarnings("ignore", message=_DEPRECATION, category=DeprecationWarning)
            data = read_file(str(path))
            return decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError as err:
        raise VOCDataError(f"image does not decode (torchvision): {_reason(err)}", path) from None
