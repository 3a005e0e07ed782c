"""LightningModule for VOC multi-label classification with any crop-batch model.

The model maps crops ``[B, K, 3, H, W]`` to logits ``[B, C]`` (``bench.model.CropMaxClassifier``
is the one the benchmark uses). Training minimises the mean over classes of the binary
cross-entropy; evaluation gathers every prediction across processes, drops the duplicates a
``DistributedSampler`` pads in, and computes the ``voc.metrics`` once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from voc.constants import IGNORED, VOC_CLASSES
from voc.metrics import evaluate

log = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (the model diverged)."""


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


@dataclass
class EvalOutput:
    """Every eval image once, in dataset order: its index, class probabilities and labels."""

    indices: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


class MultiLabelClassifier(pl.LightningModule):
    """Trains ``model`` with class-wise BCE; ``validation``/``test`` compute the VOC metrics.

    Batches are ``(indices, crops, targets)`` as ``voc.datamodule.VOCDataModule`` yields them.
    After ``trainer.validate``/``trainer.test``, :attr:`eval_output` holds the gathered
    predictions and :attr:`eval_metrics` the ``voc.metrics.evaluate`` dict (on every rank).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float = 1e-4,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        class_names: tuple[str, ...] = VOC_CLASSES,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {optimizer!r}. Valid values are {list(OPTIMIZERS)}.")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.eval_output: EvalOutput | None = None
        self.eval_metrics: dict | None = None
        self._eval_parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.model(crops)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        params = self.model.parameters()
        if hp.optimizer == "adam":
            return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        return torch.optim.SGD(params, lr=hp.lr, momentum=0.9, weight_decay=hp.weight_decay)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        _, crops, targets = batch
        loss = multilabel_bce_loss(self(crops), targets)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is not finite ({loss.item()}) at epoch {self.current_epoch}, step {self.global_step}: "
                "the model diverged; lower the learning rate (--lr)"
            )
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=targets.shape[0])
        return loss

    # -- evaluation -------------------------------------------------------------------------
    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        indices, crops, targets = batch
        probs = torch.sigmoid(self(crops).float())
        self._eval_parts.append((indices.detach(), probs.detach(), targets.detach()))

    def _eval_epoch_end(self, stage: str) -> None:
        parts, self._eval_parts = self._eval_parts, []
        if parts:
            indices = torch.cat([p[0] for p in parts])
            probs = torch.cat([p[1] for p in parts])
            targets = torch.cat([p[2] for p in parts])
        else:
            n = len(self.hparams.class_names)
            indices = torch.zeros(0, dtype=torch.long, device=self.device)
            probs = torch.zeros(0, n, device=self.device)
            targets = torch.zeros(0, n, device=self.device)
        if self.trainer.world_size > 1:
            # DistributedSampler gives every rank the same number of samples, so all_gather works;
            # it pads with repeats of the first indices, which are dropped below.
            indices, probs, targets = (self.all_gather(t).flatten(0, 1) for t in (indices, probs, targets))
        order = torch.argsort(indices, stable=True)
        indices, probs, targets = indices[order], probs[order], targets[order]
        first = torch.ones_like(indices, dtype=torch.bool)
        first[1:] = indices[1:] != indices[:-1]
        self.eval_output = EvalOutput(
            indices=indices[first].cpu().numpy(),
            scores=probs[first].cpu().numpy().astype(np.float64),
            labels=targets[first].cpu().numpy().astype(np.int64),
        )
        if len(self.eval_output.indices) == 0:
            return
        self.eval_metrics = evaluate(
            self.eval_output.scores, self.eval_output.labels, class_names=tuple(self.hparams.class_names)
        )
        for key in ("mAP", "accuracy", "tail_accuracy"):
            value = self.eval_metrics[key]
            if value is not None and math.isfinite(value):
                self.log(f"{stage}_{key}", value, rank_zero_only=True, sync_dist=False)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")
