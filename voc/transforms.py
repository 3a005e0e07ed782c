"""Image transforms of the VOC protocol: resize, augment, multi-crop, normalize.

The course project's pipeline is the default: resize the shortest edge to 400, FiveCrop 224, stack
the crops to ``[5, 3, 224, 224]`` and normalize with the backbone's mean/std. Training adds a
random horizontal flip and a random rotation of up to ±25°, applied to the resized image before
cropping (so every crop of one image sees the same augmentation). ``crop_scale`` < 1 first cuts a
random resized crop of at least that share of the resized image's area and resizes it back to the
image's size. ``augment="randaugment"`` adds
timm's RandAugment on the resized image after those, and ``erasing`` > 0 timm's RandomErasing on
each normalised training crop; neither is part of the default pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from torchvision.transforms import InterpolationMode, RandomResizedCrop
from torchvision.transforms.v2 import functional as F

from voc.config import TransformConfig
from voc.decode import decode_jpeg_batch, read_encoded, read_rgb_tensor
from voc.images import load_rgb

INTERPOLATIONS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
"""PIL's filter for each of ``voc.config.INTERPOLATION_NAMES`` (a test checks they match)."""
TENSOR_INTERPOLATIONS: dict[str, InterpolationMode] = {
    "nearest": InterpolationMode.NEAREST_EXACT,
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "lanczos": InterpolationMode.LANCZOS,
}
"""torchvision's mode for each interpolation on tensors (``decode="torchvision"``); ``NEAREST_EXACT``
is the nearest neighbour PIL computes."""


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
    """PIL image → float tensor ``[K, 3, crop, crop]`` (``[1, 3, resize, resize]`` in ``full`` mode),
    by ``config`` (``voc.config.TransformConfig``, which validated the settings); ``train`` adds
    the random flip and rotation, then the configured RandAugment and RandomErasing.

    Picklable, so DataLoader workers can use it; randomness comes from ``torch``'s generator
    (RandAugment also draws from Python's ``random`` and numpy's, RandomErasing from Python's),
    all of which Lightning seeds per worker.
    """

    config: TransformConfig
    train: bool
    _randaugment: Callable[[Image.Image], Image.Image] | None = field(init=False, repr=False, compare=False)
    _erasing: RandomErasing | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        config, train = self.config, self.train
        randaugment = None
        if train and config.augment == "randaugment":
            # as timm's create_transform builds it: translations up to 45 % of the image's shortest
            # edge, the fill colour of rotated-in areas the mean pixel
            hparams = {
                "translate_const": int(config.resize * 0.45),
                "img_mean": tuple(min(255, round(255 * m)) for m in config.mean),
                "interpolation": INTERPOLATIONS[config.interpolation],
            }
            randaugment = rand_augment_transform(config.randaugment, hparams)
        erasing = RandomErasing(config.erasing, mode="pixel", device="cpu") if train and config.erasing > 0 else None
        object.__setattr__(self, "_randaugment", randaugment)
        object.__setattr__(self, "_erasing", erasing)

    @property
    def num_crops(self) -> int:
        return self.config.num_crops

    @property
    def on_device(self) -> bool:
        """Whether the loader hands over the files' bytes and :meth:`decode_batch` makes the crops
        on the compute device (``decode="device"``, for a view without randomness)."""
        return self.config.decode == "device" and not self.train

    def read(self, path: str | Path) -> Image.Image | torch.Tensor:
        """Read the image at ``path`` for the configured decoder: a PIL RGB image at the reduced scale
        :meth:`decode_size` allows (``pil``), a uint8 tensor ``[3, H, W]`` (``torchvision``, and
        ``device`` in training), or the undecoded bytes, a uint8 tensor ``[N]`` (:attr:`on_device`)."""
        if self.on_device:
            return read_encoded(path)
        if self.config.decode in ("torchvision", "device"):
            return read_rgb_tensor(path)
        return load_rgb(path, self.decode_size)

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        """A PIL image, or a uint8 RGB tensor ``[3, H, W]`` (e.g. from :meth:`read`), to the crops;
        with :attr:`on_device`, the encoded bytes from :meth:`read`, unchanged (for :meth:`decode_batch`)."""
        if self.on_device:
            if not (isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and image.ndim == 1):
                raise ValueError(
                    f"decode='device' hands over a file's bytes (uint8 [N], from read()), got {image!r:.80}")
            return image
        pixels = self._tensor_pixels(image) if isinstance(image, torch.Tensor) else self._pil_pixels(image)
        crops = self._crops(pixels)
        crops = self._normalize(crops)
        if self._erasing is not None:
            crops = self._erasing(crops)  # in place, each crop on its own
        return crops

    def decode_batch(
        self, encoded: Sequence[torch.Tensor], device: torch.device | str, paths: Sequence[str | Path] | None = None
    ) -> torch.Tensor:
        """The crops ``[B, K, 3, h, w]`` (float32, normalised) of a batch of encoded JPEGs, made on
        ``device``: decoded in one call (``voc.decode.decode_jpeg_batch``; nvJPEG on CUDA), then each
        image resized and cropped by the ``torchvision`` path's code and the batch normalised. On the
        CPU these are the crops ``decode="torchvision"`` makes in a worker. ``paths`` name the files
        in errors."""
        if not self.on_device:
            raise ValueError("decode_batch is the decode='device' path of a view without randomness "
                             f"(this transform: decode={self.config.decode!r}, train={self.train})")
        images = decode_jpeg_batch(encoded, device, paths)
        return self._normalize(torch.stack([self._crops(self._tensor_pixels(image)) for image in images]))

    def _random_resized_crop(
        self, image: Image.Image | torch.Tensor, width: int, height: int
    ) -> Image.Image | torch.Tensor:
        """With ``crop_scale`` < 1 (training), a random crop of ``crop_scale`` to all of the image's area
        and an aspect ratio of 3/4 to 4/3 (torchvision's ``RandomResizedCrop.get_params``, drawn from
        torch's generator), resized back to ``width × height``; otherwise the image as it is."""
        if not self.train or self.config.crop_scale >= 1.0:
            return image
        top, left, h, w = RandomResizedCrop.get_params(image, scale=(self.config.crop_scale, 1.0),
                                                       ratio=(3 / 4, 4 / 3))
        if isinstance(image, torch.Tensor):
            interpolation = TENSOR_INTERPOLATIONS[self.config.interpolation]
        else:
            interpolation = InterpolationMode[self.config.interpolation.upper()]
        return F.resized_crop(image, top, left, h, w, [height, width], interpolation=interpolation, antialias=True)

    def _pil_pixels(self, image: Image.Image) -> torch.Tensor:
        image = self._resize(image)
        image = self._random_resized_crop(image, image.width, image.height)
        if self.train:
            image = self._augment(image)
        if self._randaugment is not None:
            image = self._randaugment(image)
        return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)

    def _tensor_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """The PIL path's steps on a uint8 tensor: antialiased resize, then the random flip and
        rotation (bilinear, black fill, as PIL's), then RandAugment through PIL."""
        if pixels.dtype != torch.uint8 or pixels.ndim != 3 or pixels.shape[0] != 3:
            raise ValueError(f"expected a uint8 RGB tensor [3, H, W], got {pixels.dtype} {list(pixels.shape)}")
        width, height = self.decode_size(pixels.shape[2], pixels.shape[1])
        if (pixels.shape[1], pixels.shape[2]) != (height, width):
            pixels = F.resize(pixels, [height, width], interpolation=TENSOR_INTERPOLATIONS[self.config.interpolation],
                              antialias=True)
        pixels = self._random_resized_crop(pixels, width, height)
        if self.train:
            if self.config.hflip and torch.rand(()).item() < 0.5:
                pixels = F.horizontal_flip(pixels)
            if self.config.rotation > 0:
                angle = (torch.rand(()).item() * 2.0 - 1.0) * self.config.rotation
                if not math.isclose(angle, 0.0):
                    pixels = F.rotate(pixels, angle, interpolation=InterpolationMode.BILINEAR)
        if self._randaugment is not None:
            image = self._randaugment(F.to_pil_image(pixels))
            pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        return pixels.contiguous()

    def decode_size(self, width: int, height: int) -> tuple[int, int]:
        """The smallest decoded size this transform needs from a ``width × height`` image; loaders
        may decode JPEGs at a reduced scale that covers it (see ``voc.images.load_rgb``)."""
        return resized_size(width, height, self.config.resize, self.config.crop_mode)

    def _resize(self, image: Image.Image) -> Image.Image:
        width, height = self.decode_size(image.width, image.height)
        image = image.convert("RGB")
        if image.size != (width, height):
            image = image.resize((width, height), INTERPOLATIONS[self.config.interpolation])
        return image

    def _augment(self, image: Image.Image) -> Image.Image:
        if self.config.hflip and torch.rand(()).item() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.config.rotation > 0:
            angle = (torch.rand(()).item() * 2.0 - 1.0) * self.config.rotation
            if not math.isclose(angle, 0.0):
                image = image.rotate(angle, resample=Image.Resampling.BILINEAR)
        return image

    def _crops(self, pixels: torch.Tensor) -> torch.Tensor:
        mode, size = self.config.crop_mode, [self.config.crop, self.config.crop]
        if mode == "full":
            return pixels.unsqueeze(0)
        if mode == "center":
            return F.center_crop(pixels, size).unsqueeze(0)
        if mode == "five":
            return torch.stack(F.five_crop(pixels, size))
        return torch.stack(F.ten_crop(pixels, size))

    def _normalize(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 crops ``[..., 3, h, w]`` to float32 ``(x - 255·mean) / (255·std)`` on their device."""
        mean = torch.tensor(self.config.mean, dtype=torch.float32, device=crops.device).view(3, 1, 1) * 255.0
        std = torch.tensor(self.config.std, dtype=torch.float32, device=crops.device).view(3, 1, 1) * 255.0
        return (crops.float() - mean) / std


def build_transform(config: TransformConfig, *, train: bool) -> MultiCropTransform:
    """The transform of ``config``; ``train=True`` adds the random augmentation."""
    return MultiCropTransform(config=config, train=train)
