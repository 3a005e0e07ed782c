"""Multi-label training losses on logits ``[B, C]`` against targets ``[B, C]`` of 1 / 0 / -1.

Entries labelled ``-1`` (ignored) add nothing to either loss and get no gradient. Both compute in
float32 whatever the logits' dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from voc.config import TrainConfig
from voc.constants import IGNORED

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def multilabel_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over classes (and images) of the binary cross-entropy of ``sigmoid(logits)``.

    Computed as BCE-with-logits in fp32 (the same value as BCE on the probabilities, numerically
    stable). Entries labelled ``-1`` (ignored) are left out of the mean.
    """
    logits = logits.float()
    targets = targets.float()
    keep = targets != IGNORED
    losses = nn.functional.binary_cross_entropy_with_logits(logits, targets.clamp(min=0), reduction="none")
    if bool(keep.all()):
        return losses.mean()
    return (losses * keep).sum() / keep.sum().clamp(min=1)


def asymmetric_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    gamma_neg: float = 4.0,
    gamma_pos: float = 0.0,
    clip: float = 0.05,
    eps: float = 1e-8,
) -> torch.Tensor:
    """The asymmetric loss (ASL, Ridnik et al., ICCV 2021), **summed** over the labelled entries.

    With ``p = sigmoid(x)`` and the shifted probability ``p_m = max(p - clip, 0)``, an entry adds

    - positive (1): ``-(1 - p)^gamma_pos * log(max(p, eps))``
    - negative (0): ``-p_m^gamma_neg * log(max(1 - p_m, eps))`` — zero for ``p <= clip``

    This is ``AsymmetricLoss.forward`` of Alibaba-MIIL/ASL ``src/loss_functions/losses.py``
    (``1 - p_m`` is its ``(1 - p + clip).clamp(max=1)``), with two choices stated: the focusing
    weights ``(1 - p)^gamma_pos`` and ``p_m^gamma_neg`` are constants for the gradient, as with
    ``disable_torch_grad_focal_loss=True``, the setting of the repository's ``train.py``; and the
    reduction is its sum over images and classes, not a mean (with Adam the scale matters only
    against the weight decay and Adam's eps). Ignored (-1) entries add 0.
    """
    logits = logits.float()
    targets = targets.float()
    keep = (targets != IGNORED).float()
    positive = targets.clamp(min=0)
    negative = 1.0 - positive
    p = torch.sigmoid(logits)
    p_neg = (1.0 - p + clip).clamp(max=1.0) if clip > 0 else 1.0 - p  # 1 - p_m
    log_likelihood = positive * torch.log(p.clamp(min=eps)) + negative * torch.log(p_neg.clamp(min=eps))
    if gamma_neg > 0 or gamma_pos > 0:
        with torch.no_grad():
            p_true = p * positive + p_neg * negative
            weight = torch.pow(1.0 - p_true, gamma_pos * positive + gamma_neg * negative)
        log_likelihood = log_likelihood * weight
    return -(log_likelihood * keep).sum()


def build_loss(config: TrainConfig) -> LossFn:
    """The loss ``config.loss`` names, with its settings."""
    if config.loss == "asl":
        return partial(
            asymmetric_loss, gamma_neg=config.asl_gamma_neg, gamma_pos=config.asl_gamma_pos, clip=config.asl_clip
        )
    return multilabel_bce_loss
