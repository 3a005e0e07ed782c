"""The training and evaluation protocol: one frozen config applied identically to every backbone."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Protocol:
    """Everything that decides how a backbone is trained and evaluated (stored with each result).

    The defaults are the seed project's protocol: Adam at lr 1e-4, batch 8, no scheduler, the mean
    class-wise BCE on crop-max logits, resize 400 → FiveCrop 224, flip + ±25° rotation, VOC2012
    train → val, difficult objects negative, images without a positive label left out, seeded.
    """

    year: str = "2012"
    train_split: str = "train"
    eval_split: str = "val"
    epochs: int = 10
    batch_size: int = 8
    eval_batch_size: int = 16
    lr: float = 1e-4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    scheduler: str = "none"
    loss: str = "mean over classes of BCE-with-logits on the crop-max logits"
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

    @property
    def input_size(self) -> int:
        """Side of the square crops the backbone sees (the resized image in ``full`` mode)."""
        return self.resize if self.crop_mode == "full" else self.crop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> Protocol:
        """A copy with the non-``None`` ``overrides`` applied (explicit flags win over defaults)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown protocol fields {unknown}; valid fields are {sorted(known)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


SEED_PROTOCOL = Protocol()
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
