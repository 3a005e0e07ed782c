"""Image transforms of the VOC protocol: resize, augment, multi-crop, normalize.

The seed project's pipeline is the default: resize the shortest edge to 400, FiveCrop 224, stack
the crops to ``[5, 3, 224, 224]`` and normalize with the backbone's mean/std. Training adds a
random horizontal flip and a random rotation of up to ±25°, applied to the resized image before
cropping (so every crop of one image sees the same augmentation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from voc.constants import IMAGENET_MEAN, IMAGENET_STD

CROP_MODES: tuple[str, ...] = ("five", "ten", "center", "full")
"""``five``: FiveCrop (4 corners + centre); ``ten``: those and their mirror images; ``center``:
the centre crop; ``full``: the whole image resized to ``resize × resize`` (aspect ratio not kept)."""

INTERPOLATIONS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def num_crops(crop_mode: str) -> int:
    """Number of crops ``K`` a crop mode produces per image."""
    return {"five": 5, "ten": 10, "center": 1, "full": 1}[_check_crop_mode(crop_mode)]


def _check_crop_mode(crop_mode: str) -> str:
    if crop_mode not in CROP_MODES:
        raise ValueError(f"Unknown crop mode {crop_mode!r}. Valid values are {list(CROP_MODES)}.")
    return crop_mode


def resized_size(width: int, height: int, resize: int, crop_mode: str) -> tuple[int, int]:
    """(width, height) of the image after the resize step: shortest edge to ``resize``, or a
    ``resize × resize`` square in ``full`` mode."""
    if crop_mode == "full":
        return resize, resize
    if width <= height:
        return resize, max(resize, round(height * resize / width))
    return max(resize, round(width * resize / height)), resize


@dataclass(frozen=True)
class MultiCropTransform:
    """PIL image → float tensor ``[K, 3, crop, crop]`` (``[1, 3, resize, resize]`` in ``full`` mode).

    Picklable, so DataLoader workers can use it; randomness comes from ``torch``'s generator,
    which Lightning seeds per worker.
    """

    train: bool
    resize: int = 400
    crop: int = 224
    crop_mode: str = "five"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"
    hflip: bool = True
    rotation: float = 25.0

    def __post_init__(self) -> None:
        _check_crop_mode(self.crop_mode)
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"Unknown interpolation {self.interpolation!r}. Valid values are {list(INTERPOLATIONS)}."
            )
        if self.resize < 1 or self.crop < 1:
            raise ValueError(f"resize and crop must be positive, got resize={self.resize}, crop={self.crop}")
        if self.crop_mode != "full" and self.crop > self.resize:
            raise ValueError(
                f"crop ({self.crop}) must not exceed resize ({self.resize}): the crops are cut from the resized image"
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values each, got {self.mean} and {self.std}")

    @property
    def num_crops(self) -> int:
        return num_crops(self.crop_mode)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = self._resize(image)
        if self.train:
            image = self._augment(image)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        crops = self._crops(pixels)
        return self._normalize(crops)

    def decode_size(self, width: int, height: int) -> tuple[int, int]:
        """The smallest decoded size this transform needs from a ``width × height`` image; loaders
        may decode JPEGs at a reduced scale that covers it (see ``voc.dataset.load_rgb``)."""
        return resized_size(width, height, self.resize, self.crop_mode)

    def _resize(self, image: Image.Image) -> Image.Image:
        width, height = resized_size(image.width, image.height, self.resize, self.crop_mode)
        image = image.convert("RGB")
        if image.size != (width, height):
            image = image.resize((width, height), INTERPOLATIONS[self.interpolation])
        return image

    def _augment(self, image: Image.Image) -> Image.Image:
        if self.hflip and torch.rand(()).item() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.rotation > 0:
            angle = (torch.rand(()).item() * 2.0 - 1.0) * self.rotation
            if not math.isclose(angle, 0.0):
                image = image.rotate(angle, resample=Image.Resampling.BILINEAR)
        return image

    def _crops(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.crop_mode == "full":
            return pixels.unsqueeze(0)
        if self.crop_mode == "center":
            return F.center_crop(pixels, [self.crop, self.crop]).unsqueeze(0)
        if self.crop_mode == "five":
            return torch.stack(F.five_crop(pixels, [self.crop, self.crop]))
        return torch.stack(F.ten_crop(pixels, [self.crop, self.crop]))

    def _normalize(self, crops: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        return (crops.float() - mean) / std


def build_transform(
    *,
    train: bool,
    resize: int = 400,
    crop: int = 224,
    crop_mode: str = "five",
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    interpolation: str = "bilinear",
    hflip: bool = True,
    rotation: float = 25.0,
) -> MultiCropTransform:
    """The protocol's transform; ``train=True`` adds the random flip and rotation."""
    return MultiCropTransform(
        train=train,
        resize=resize,
        crop=crop,
        crop_mode=crop_mode,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        interpolation=interpolation,
        hflip=hflip,
        rotation=rotation,
    )
