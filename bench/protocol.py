"""The training and evaluation protocol: one frozen config applied identically to every backbone.

This is the single statement of the protocol. The ``voc`` package's config objects (labels,
transforms) are built from it (:meth:`Protocol.label_config`, :meth:`Protocol.transform_config`);
no other module lists its fields again. Torch-free: the command line reads it before deciding
whether to load torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from voc.config import LabelConfig, TransformConfig
from voc.constants import IMAGENET_MEAN, IMAGENET_STD

PRECISIONS: tuple[str, ...] = ("auto", "bf16-mixed", "16-mixed", "32-true")
"""``auto``: bf16 mixed precision where the hardware runs it fast, else fp32 (``bench.hardware``)."""


@dataclass(frozen=True)
class Protocol:
    """Everything that decides how a backbone is trained and evaluated (stored with each result).

    Every field is applied: the labels and transforms through :meth:`label_config` and
    :meth:`transform_config`, the optimisation through ``voc.module.MultiLabelClassifier``, the
    loop through the Lightning trainer. The defaults are the course project's protocol: Adam at
    lr 1e-4, batch 8, no scheduler, the mean class-wise BCE on crop-max logits, resize 400 →
    FiveCrop 224, flip + ±25° rotation, VOC2012 train → val, difficult objects negative, images
    without a positive label left out, seeded.
    """

    name: str = "course"
    """Which recipe this is; every record and leaderboard row carries it, and rows of different
    protocols are never ranked in one table. Variants sized for a machine (the synthetic set's
    CPU-sized one) keep the name of the recipe they scale down."""
    year: str = "2012"
    train_split: str = "train"
    eval_split: str = "val"
    epochs: int = 10
    batch_size: int = 8
    eval_batch_size: int = 16
    lr: float = 1e-4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    resize: int = 400
    crop: int = 224
    crop_mode: str = "five"
    hflip: bool = True
    rotation: float = 25.0
    difficult: str = "negative"
    label_source: str = "annotations"
    positive_only: bool = True
    precision: str = "auto"
    seed: int = 0
    limit_train_batches: float | None = None
    limit_eval_batches: float | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid values are {list(PRECISIONS)}")

    @property
    def input_size(self) -> int:
        """Side of the square crops the backbone sees (the resized image in ``full`` mode)."""
        return self.transform_config().input_size

    def label_config(self) -> LabelConfig:
        """How the protocol labels its images (``voc.config.LabelConfig``)."""
        return LabelConfig(source=self.label_source, difficult=self.difficult, positive_only=self.positive_only)

    def transform_config(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        interpolation: str = "bilinear",
    ) -> TransformConfig:
        """The protocol's image pipeline, normalised with the backbone's ``mean``/``std`` and
        resampled with its ``interpolation`` (``voc.config.TransformConfig``)."""
        return TransformConfig(
            resize=self.resize,
            crop=self.crop,
            crop_mode=self.crop_mode,
            mean=tuple(mean),
            std=tuple(std),
            interpolation=interpolation,
            hflip=self.hflip,
            rotation=self.rotation,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> Protocol:
        """A copy with the non-``None`` ``overrides`` applied (explicit flags win over defaults)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown protocol fields {unknown}; valid fields are {sorted(known)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


COURSE_PROTOCOL = Protocol()
"""The course project's protocol, for real VOC."""

CPU_SYNTHETIC_PROTOCOL = Protocol(
    epochs=6,
    batch_size=16,
    eval_batch_size=64,
    lr=1e-3,
    resize=112,
    crop=112,
    crop_mode="full",
)
"""The embedded default on the synthetic set: sized to finish on a 2-core CPU in minutes."""


def config_hash(*parts: dict[str, Any]) -> str:
    """A short stable hash of JSON-able dicts (protocol, data), to recognise the same config."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
