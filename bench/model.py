"""The one crop-max classifier every backbone runs in, and how a timm backbone is built into it."""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
from timm.data import resolve_model_data_config
from torch import nn

from bench.registry import backbone_spec
from bench.weight_packages import timm_model_name
from bench.weights import Weights
from voc.constants import NUM_CLASSES
from voc.transforms import INTERPOLATIONS


class CropMaxClassifier(nn.Module):
    """Runs a backbone on every crop and keeps, per class, the highest logit over the crops.

    Input ``[B, K, 3, H, W]`` → backbone on the ``B·K`` crops → max over the ``K`` crops →
    logits ``[B, C]``, always float32. Probabilities are ``sigmoid(logits)``: since sigmoid is
    increasing this equals the course project's max over the crops' probabilities.

    The head of a timm backbone (``forward_head``: pooling, any head norm, the classifier) runs in
    float32 with autocast off, on float32 features. Under bf16 autocast a bf16 classifier's logits
    carry 8 bits of mantissa, and thousands of eval images then share a score, which makes AP
    depend on how ties are treated; the features stay in the autocast precision, the cheap head
    does not. A backbone without ``forward_features``/``forward_head`` runs whole, its output cast
    to float32.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self._split_head = hasattr(backbone, "forward_features") and hasattr(backbone, "forward_head")

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        if crops.dim() != 5:
            raise ValueError(f"expected crops of shape [B, K, 3, H, W], got {tuple(crops.shape)}")
        batch, num_crops = crops.shape[:2]
        flat = crops.flatten(0, 1).contiguous(memory_format=torch.channels_last)
        if self._split_head:
            features = self.backbone.forward_features(flat)
            with torch.autocast(device_type=flat.device.type, enabled=False):
                logits = self.backbone.forward_head(features.float())
        else:
            logits = self.backbone(flat).float()
        return logits.view(batch, num_crops, -1).amax(dim=1)

    def get_classifier(self) -> nn.Module:
        """The backbone's final layer (timm's ``get_classifier()``), which ``voc.optim`` gives the head
        learning rate; an empty module where the backbone has no such method."""
        get_classifier = getattr(self.backbone, "get_classifier", None)
        return get_classifier() if get_classifier is not None else nn.Identity()

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters the timm backbone keeps out of weight decay (e.g. a ViT's position
        embedding and class token), as named in this module."""
        names = getattr(self.backbone, "no_weight_decay", lambda: set())()
        return {f"backbone.{name}" for name in names}


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
    A name whose tag only a weight package has is built as its architecture (``resnet50.augnet_ssl_in1k``:
    timm's ``resnet50``, the package's weights and preprocessing coming with ``weights``).
    """
    kwargs = dict(backbone_spec(model_name).create_kwargs)
    kwargs.update(weights.create_kwargs())
    timm_name = timm_model_name(model_name)
    cfg = timm.models.get_pretrained_cfg(timm_name)
    if input_size is not None and cfg is not None and cfg.fixed_input_size and cfg.input_size[-1] != input_size:
        kwargs.setdefault("img_size", input_size)
    backbone = timm.create_model(timm_name, num_classes=num_classes, **kwargs)
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
