"""The one crop-max classifier every backbone runs in, and how a timm backbone is built into it."""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
from timm.data import resolve_model_data_config
from torch import nn

from bench.registry import backbone_spec
from bench.weights import Weights
from voc.constants import NUM_CLASSES
from voc.transforms import INTERPOLATIONS


class CropMaxClassifier(nn.Module):
    """Runs a backbone on every crop and keeps, per class, the highest logit over the crops.

    Input ``[B, K, 3, H, W]`` → backbone on the ``B·K`` crops → max over the ``K`` crops →
    logits ``[B, C]``. Probabilities are ``sigmoid(logits)``: since sigmoid is increasing this
    equals the seed project's max over the crops' probabilities.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        if crops.dim() != 5:
            raise ValueError(f"expected crops of shape [B, K, 3, H, W], got {tuple(crops.shape)}")
        batch, num_crops = crops.shape[:2]
        flat = crops.flatten(0, 1).contiguous(memory_format=torch.channels_last)
        logits = self.backbone(flat)
        return logits.view(batch, num_crops, -1).amax(dim=1)


@dataclass(frozen=True)
class DataConfig:
    """The backbone's preprocessing, from timm: normalisation and resampling filter."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str


def build_classifier(
    model_name: str, weights: Weights, num_classes: int = NUM_CLASSES, input_size: int | None = None
) -> tuple[CropMaxClassifier, DataConfig]:
    """A timm backbone with a fresh ``num_classes`` head inside the crop-max wrapper.

    ``input_size`` is the crop side the protocol feeds; backbones that timm marks as having a
    fixed input size (ViTs, Swin, ...) are built for it (``img_size``), the others take any size.
    """
    kwargs = dict(backbone_spec(model_name).create_kwargs)
    kwargs.update(weights.create_kwargs())
    cfg = timm.models.get_pretrained_cfg(model_name)
    if input_size is not None and cfg is not None and cfg.fixed_input_size and cfg.input_size[-1] != input_size:
        kwargs.setdefault("img_size", input_size)
    backbone = timm.create_model(model_name, num_classes=num_classes, **kwargs)
    cfg = resolve_model_data_config(backbone)
    interpolation = cfg.get("interpolation", "bilinear")
    data_config = DataConfig(
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        interpolation=interpolation if interpolation in INTERPOLATIONS else "bilinear",
    )
    return CropMaxClassifier(backbone), data_config


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
