"""The exponential moving average (EMA) of a model's weights, as timm keeps it (``ModelEmaV3``).

After every optimiser step each floating-point tensor of the model's ``state_dict`` (parameters
and buffers, e.g. batch-norm statistics) is folded into the average, ``ema = d * ema + (1 - d) *
weights``; integer buffers are copied. The average starts as a copy of the model. Without warmup
``d`` is ``ema_decay`` at every step, so after ``n`` steps ``ema_n = d^n w_0 + (1 - d) *
sum_k d^(n-k) w_k`` (``w_k``: the weights after step ``k``). With warmup, step ``t`` (1 = the first)
uses timm's ``d_t = min(ema_decay, 1 - t^(-2/3))``: the first step copies the weights, and the
average follows them closely early in training (``d_t`` is 0.99 at step 1,000). With an
``ema_horizon`` the decay is set from the run's planned steps once they are known
(``TrainConfig.ema_decay_for``), before the first step.
"""

from __future__ import annotations

from timm.utils import ModelEmaV3
from torch import nn

from voc.config import TrainConfig


def build_ema(model: nn.Module, config: TrainConfig) -> ModelEmaV3 | None:
    """An EMA copy of ``model`` (in eval mode, no gradients) where the config keeps one, else ``None``.
    With an ``ema_horizon``, its decay is set by :func:`set_run_length` once the run's steps are known."""
    if not config.has_ema:
        return None
    ema = ModelEmaV3(model, decay=config.ema_decay, use_warmup=config.ema_warmup)
    ema.requires_grad_(False)
    return ema


def set_run_length(ema: ModelEmaV3, config: TrainConfig, run_steps: int) -> float:
    """Set ``ema``'s decay for a run of ``run_steps`` optimiser steps (``TrainConfig.ema_decay_for``);
    returns it."""
    ema.decay = config.ema_decay_for(run_steps)
    return ema.decay


def initial_weight_share(decay: float, warmup: bool, run_steps: int) -> float:
    """The share of the initial weights in the average after ``run_steps`` updates: ``decay ** steps``
    without warmup; 0 with timm's warmup (its first step, ``d_1 = 0``, copies the weights)."""
    if warmup and run_steps > 0:
        return 0.0
    return float(decay) ** run_steps


def update_ema(ema: ModelEmaV3, model: nn.Module, config: TrainConfig, optimizer_steps: int) -> None:
    """Fold ``model``'s weights into ``ema`` after optimiser step number ``optimizer_steps`` (1 = the first)."""
    ema.update(model, step=optimizer_steps if config.ema_warmup else None)
