"""LightningModule for VOC multi-label classification with any crop-batch model.

The model maps crops ``[B, K, 3, H, W]`` to logits ``[B, C]`` (``bench.model.CropMaxClassifier``
is the one the benchmark uses). Training follows a ``voc.config.TrainConfig`` (by default the
course's: Adam, the mean class-wise binary cross-entropy); evaluation gathers every prediction
across processes, drops the duplicates a ``DistributedSampler`` pads in, and computes the
``voc.metrics`` once, for the trained weights and, where there is one, their EMA.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from voc.config import EMA_FORGET_LIMIT, OPTIMIZERS, TrainConfig
from voc.constants import VOC_CLASSES
from voc.ema import build_ema, initial_weight_share, set_run_length, update_ema
from voc.losses import build_loss, multilabel_bce_loss
from voc.metrics import evaluate
from voc.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

__all__ = ["OPTIMIZERS", "EvalOutput", "MultiLabelClassifier", "NonFiniteLossError", "multilabel_bce_loss"]

SCALAR_METRICS: tuple[str, ...] = ("mAP", "map_voc07", "map_voc12", "accuracy", "tail_accuracy")
"""The headline numbers of a metrics dict, kept for every evaluated model
(:meth:`MultiLabelClassifier.eval_summary`)."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (the model diverged)."""


@dataclass
class EvalOutput:
    """Every eval image once, in dataset order: its index, class probabilities and labels."""

    indices: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


class MultiLabelClassifier(pl.LightningModule):
    """Trains ``model`` by a :class:`voc.config.TrainConfig`; ``validation``/``test`` compute the VOC metrics.

    ``train_settings`` are the ``TrainConfig`` fields; omitted ones take its defaults, the course's.
    All are saved as hyperparameters and applied here but ``head_init`` (the model arrives with its
    head): the optimiser and its parameter groups and schedule (``voc.optim``, the schedule stepped
    after every batch over Lightning's ``estimated_stepping_batches``), the loss (``voc.losses``),
    the EMA (``voc.ema``, updated after every optimiser step, its decay set from the run's steps
    where it has an ``ema_horizon``), batch norm (``frozen``: every batch-norm layer stays in eval
    mode whenever the module trains) and test-time augmentation (``tta``).

    Batches are ``(indices, crops, targets)`` as ``voc.datamodule.VOCDataModule`` yields them.
    After ``trainer.validate``/``trainer.test``, :attr:`eval_outputs` and :attr:`eval_results`
    hold, per evaluated model (``raw``, and ``ema`` where there is an EMA), the gathered
    predictions and the ``voc.metrics.evaluate`` dict (on every rank); :attr:`eval_output` and
    :attr:`eval_metrics` are those of :attr:`reported_model`, settled before the first step whatever
    either model scores: ``report_model``, except that an EMA still holding more than
    ``voc.config.EMA_FORGET_LIMIT`` of the initial weights at the end of the planned steps is not
    reported (:attr:`report_note` says so). Logged: ``{stage}_mAP`` etc. for ``raw``,
    ``{stage}_ema_mAP`` etc. for ``ema``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        class_names: tuple[str, ...] = VOC_CLASSES,
        channels_last: bool = True,
        **train_settings: Any,
    ) -> None:
        super().__init__()
        self.config = TrainConfig(**train_settings)
        self.save_hyperparameters({"class_names": class_names, "channels_last": channels_last, **asdict(self.config)})
        self.model = model
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.loss_fn = build_loss(self.config)
        self.ema = build_ema(self.model, self.config)
        self.reported_model: str = self.config.report_model
        """The model whose predictions are reported, settled in :meth:`on_fit_start`."""
        self.report_note: str | None = None
        """Why :attr:`reported_model` differs from ``report_model``, where it does."""
        self.ema_run: dict[str, Any] | None = None
        """The EMA's decay, warmup and initial-weight share over the planned run (set at fit start)."""
        self.eval_outputs: dict[str, EvalOutput] = {}
        self.eval_results: dict[str, dict] = {}
        self._eval_parts: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}

    @property
    def eval_output(self) -> EvalOutput | None:
        """The reported model's predictions from the latest evaluation."""
        return self.eval_outputs.get(self.reported_model)

    @property
    def eval_metrics(self) -> dict | None:
        """The reported model's metrics from the latest evaluation."""
        return self.eval_results.get(self.reported_model)

    def eval_summary(self) -> dict[str, Any]:
        """Which model is reported, and the headline metrics (:data:`SCALAR_METRICS`) of every
        evaluated model, e.g. ``{"reported": "ema", "raw": {"mAP": ...}, "ema": {"mAP": ...}}``, with
        the EMA's run (``ema``: decay, warmup, initial-weight share) and :attr:`report_note` where set."""
        summary: dict[str, Any] = {"reported": self.reported_model}
        if self.report_note is not None:
            summary["note"] = self.report_note
        if self.ema_run is not None:
            summary["ema_run"] = self.ema_run
        for name, metrics in self.eval_results.items():
            summary[name] = {k: metrics.get(k) for k in SCALAR_METRICS}
        return summary

    def on_fit_start(self) -> None:
        """Settle, from the planned optimiser steps and before the first, the EMA's decay (an
        ``ema_horizon``) and which model is reported (:attr:`reported_model`)."""
        if self.ema is None:
            return
        steps = int(self.trainer.estimated_stepping_batches)
        decay = set_run_length(self.ema, self.config, steps)
        share = initial_weight_share(decay, self.config.ema_warmup, steps)
        self.ema_run = {"decay": decay, "warmup": self.config.ema_warmup, "steps": steps,
                        "initial_weight_share": share}
        self.reported_model, self.report_note = self.config.report_model, None
        if self.config.report_model == "ema" and share > EMA_FORGET_LIMIT:
            self.reported_model = "raw"
            self.report_note = (
                f"the EMA (decay {decay:g}, no warmup) still holds {share:.2f} of the initial weights after the run's "
                f"{steps} steps, more than {EMA_FORGET_LIMIT:g}: the raw model is reported"
            )
            log.warning("%s", self.report_note)

    def train(self, mode: bool = True) -> MultiLabelClassifier:
        """The train/eval switch; with ``batchnorm="frozen"`` every batch-norm layer of the model stays
        in eval mode (its running statistics used and kept) while the rest trains."""
        super().train(mode)
        if mode:
            self._freeze_batchnorm()
        return self

    def on_train_epoch_start(self) -> None:
        """Lightning keeps each submodule's mode as it finds it (it calls no ``train()``): frozen batch
        norm is put in eval mode before every training epoch."""
        self._freeze_batchnorm()

    def _freeze_batchnorm(self) -> None:
        if self.config.batchnorm == "frozen":
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.model(crops)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        optimizer = build_optimizer(self.model, self.config)
        if self.config.scheduler == "none" and self.config.warmup == 0:
            return optimizer  # a constant learning rate (the course's): nothing to estimate
        scheduler = build_scheduler(optimizer, self.config, int(self.trainer.estimated_stepping_batches))
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        _, crops, targets = batch
        loss = self.loss_fn(self(crops), targets)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is not finite ({loss.item()}) at epoch {self.current_epoch}, step {self.global_step}: "
                "the model diverged; lower the learning rate (--lr)"
            )
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=targets.shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            update_ema(self.ema, self.model, self.config, self.global_step)

    # -- evaluation -------------------------------------------------------------------------
    def _eval_models(self) -> dict[str, nn.Module]:
        models = {"raw": self.model}
        if self.ema is not None:
            models["ema"] = self.ema.module
        return models

    def eval_logits(self, model: nn.Module, crops: torch.Tensor) -> torch.Tensor:
        """``model``'s float32 logits of ``crops`` ``[B, K, 3, H, W]`` under the config's ``tta``:
        with ``hflip``, the mean of the logits of the crops and of their mirror images."""
        logits = model(crops).float()
        if self.config.tta == "hflip":
            logits = (logits + model(crops.flip(-1)).float()) / 2
        return logits

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        indices, crops, targets = batch
        for name, model in self._eval_models().items():
            probs = torch.sigmoid(self.eval_logits(model, crops))
            self._eval_parts.setdefault(name, []).append((indices.detach(), probs.detach(), targets.detach()))

    def _eval_epoch_end(self, stage: str) -> None:
        parts_by_model, self._eval_parts = self._eval_parts, {}
        self.eval_outputs, self.eval_results = {}, {}
        for name in self._eval_models():
            self._evaluate(stage, name, parts_by_model.get(name, []))

    def _evaluate(self, stage: str, name: str, parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
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
        output = self.eval_outputs[name] = EvalOutput(
            indices=indices[first].cpu().numpy(),
            scores=probs[first].cpu().numpy().astype(np.float64),
            labels=targets[first].cpu().numpy().astype(np.int64),
        )
        if len(output.indices) == 0:
            return
        metrics = self.eval_results[name] = evaluate(
            output.scores, output.labels, class_names=tuple(self.hparams.class_names)
        )
        prefix = stage if name == "raw" else f"{stage}_{name}"
        for key in ("mAP", "accuracy", "tail_accuracy"):
            value = metrics[key]
            if value is not None and math.isfinite(value):
                self.log(f"{prefix}_{key}", value, rank_zero_only=True, sync_dist=False)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")
