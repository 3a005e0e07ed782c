"""The task's settings as frozen, validated values: how images are labelled (:class:`LabelConfig`)
and how they are turned into crops (:class:`TransformConfig`).

Torch-free (stdlib and ``voc.constants`` only): command lines read and check these before deciding
whether to load torch. ``voc.dataset``, ``voc.transforms`` and ``voc.datamodule`` take them.
"""

from __future__ import annotations

from dataclasses import dataclass

from voc.constants import DIFFICULT_ONLY_LABELS, DIFFICULT_POLICIES, IMAGENET_MEAN, IMAGENET_STD, LABEL_SOURCES

CROP_MODES: tuple[str, ...] = ("five", "ten", "center", "full")
"""``five``: FiveCrop (4 corners + centre); ``ten``: those and their mirror images; ``center``:
the centre crop; ``full``: the whole image resized to ``resize × resize`` (aspect ratio not kept)."""

_CROPS_PER_MODE: dict[str, int] = {"five": 5, "ten": 10, "center": 1, "full": 1}

INTERPOLATION_NAMES: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "lanczos")
"""Resampling filters of the resize step (``voc.transforms.INTERPOLATIONS`` maps them to PIL's)."""


def difficult_only_label(policy: str) -> int:
    """The label of a class whose only objects in an image are difficult, under ``policy``
    (``voc.constants.DIFFICULT_ONLY_LABELS``). Raises ValueError for an unknown policy, listing
    the valid ones."""
    try:
        return DIFFICULT_ONLY_LABELS[policy]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown difficult policy {policy!r}. Valid values are {list(DIFFICULT_POLICIES)}.") from None


def check_label_source(source: str) -> str:
    """``source`` if it is one of ``LABEL_SOURCES``; else ValueError listing them."""
    if source not in LABEL_SOURCES:
        raise ValueError(f"Unknown label source {source!r}. Valid values are {list(LABEL_SOURCES)}.")
    return source


def num_crops(crop_mode: str) -> int:
    """Number of crops ``K`` a crop mode produces per image; ValueError for an unknown mode."""
    return _CROPS_PER_MODE[_check_crop_mode(crop_mode)]


def _check_crop_mode(crop_mode: str) -> str:
    if crop_mode not in CROP_MODES:
        raise ValueError(f"Unknown crop mode {crop_mode!r}. Valid values are {list(CROP_MODES)}.")
    return crop_mode


@dataclass(frozen=True)
class LabelConfig:
    """Which labels a split gets.

    ``source``: ``annotations`` (the XML files) or ``imagesets`` (the per-class ImageSets lists);
    ``difficult``: the label of a class whose only objects in an image are difficult (``negative``
    0, ``ignore`` -1, ``positive`` 1); ``positive_only``: keep only images with a positive label.
    Raises ValueError for an unknown source or policy, listing the valid values.
    """

    source: str = "annotations"
    difficult: str = "negative"
    positive_only: bool = False

    def __post_init__(self) -> None:
        check_label_source(self.source)
        difficult_only_label(self.difficult)


@dataclass(frozen=True)
class TransformConfig:
    """The image pipeline: resize the shortest edge to ``resize`` (a ``resize × resize`` square in
    ``full`` mode), augment when training (``hflip``, a random rotation of up to ±``rotation``
    degrees), cut ``crop × crop`` crops by ``crop_mode`` and normalise with ``mean``/``std``
    (per channel, on a 0-1 scale).

    Raises ValueError for an unknown crop mode or interpolation (listing the valid ones), a
    non-positive size, a crop larger than the resized image (except in ``full`` mode, which
    does not crop), or ``mean``/``std`` without 3 values. ``mean`` and ``std`` are stored as
    tuples of floats.
    """

    resize: int = 400
    crop: int = 224
    crop_mode: str = "five"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"
    hflip: bool = True
    rotation: float = 25.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        _check_crop_mode(self.crop_mode)
        if self.interpolation not in INTERPOLATION_NAMES:
            raise ValueError(
                f"Unknown interpolation {self.interpolation!r}. Valid values are {list(INTERPOLATION_NAMES)}."
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
        """Crops per image, ``K`` of the ``[K, 3, H, W]`` a transform returns."""
        return num_crops(self.crop_mode)

    @property
    def input_size(self) -> int:
        """Side of the square crops a model sees: ``resize`` in ``full`` mode, else ``crop``."""
        return self.resize if self.crop_mode == "full" else self.crop
