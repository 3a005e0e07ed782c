"""Optimiser, parameter groups and learning-rate schedule of a :class:`voc.config.TrainConfig`.

A model exposes its classifier the way timm models do: ``get_classifier()`` returns the final
layer (the head), and an optional ``no_weight_decay()`` lists parameter names (fnmatch patterns)
that take no weight decay (e.g. a ViT's position embedding). ``bench.model.CropMaxClassifier``
forwards both from its timm backbone.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from timm.optim import param_groups_layer_decay, param_groups_weight_decay
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from voc.config import TrainConfig

SGD_MOMENTUM = 0.9


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``model.get_classifier()``; ValueError where the model has no such
    method or its classifier has no parameters (no head to give its own learning rate)."""
    get_classifier = getattr(model, "get_classifier", None)
    if get_classifier is None:
        raise ValueError(
            f"{type(model).__name__} has no get_classifier(): a head learning-rate multiplier needs to know the head"
        )
    params = list(get_classifier().parameters())
    if not params:
        raise ValueError(f"the classifier of {type(model).__name__} has no parameters: there is no head to multiply")
    return params


def layer_decay_root(model: nn.Module) -> nn.Module:
    """The module whose layers timm's ``param_groups_layer_decay`` groups: ``model`` where it has
    timm's ``group_matcher()``, else its ``backbone`` where that holds every trainable parameter (the
    crop-max wrapper around a timm model), else ``model`` (timm then groups by its fallback rule)."""
    if hasattr(model, "group_matcher"):
        return model
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, nn.Module):
        inside = {id(p) for p in backbone.parameters()}
        if all(id(p) in inside for p in model.parameters() if p.requires_grad):
            return backbone
    return model


def _by_decay(model: nn.Module, config: TrainConfig) -> list[tuple[str, list[nn.Parameter], float, float]]:
    """``(name, params, weight_decay, lr_scale)`` groups before the head's split."""
    if config.layer_decay != 1.0:
        root = layer_decay_root(model)
        prefix = "" if root is model else next(n for n, m in model.named_children() if m is root) + "."
        no_decay_names = {n.removeprefix(prefix) for n in getattr(model, "no_weight_decay", lambda: ())()}
        groups = param_groups_layer_decay(root, weight_decay=config.weight_decay, no_weight_decay_list=no_decay_names,
                                          layer_decay=config.layer_decay)
        out = []
        for index, group in enumerate(groups):
            kind = "no_decay" if group["weight_decay"] == 0 else "decay"
            out.append((f"layer{index}/{kind}", list(group["params"]), group["weight_decay"], group["lr_scale"]))
        return out
    if config.weight_decay > 0:
        no_decay_names = getattr(model, "no_weight_decay", lambda: ())()
        return [
            ("no_decay" if group["weight_decay"] == 0 else "decay", group["params"], group["weight_decay"], 1.0)
            for group in param_groups_weight_decay(model, config.weight_decay, no_weight_decay_list=no_decay_names)
        ]
    return [("all", [p for p in model.parameters() if p.requires_grad], 0.0, 1.0)]


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: every trainable parameter once, each group with its
    ``lr`` and ``weight_decay`` and a ``name``.

    Weight decay: timm's ``param_groups_weight_decay`` splits the parameters into ``decay`` and
    ``no_decay`` (biases, parameters of one dimension or fewer — norm weights — and the model's
    ``no_weight_decay()`` names), the latter at 0; with ``weight_decay`` 0 there is one group.
    Layer decay (``layer_decay`` < 1): timm's ``param_groups_layer_decay`` makes those groups per
    layer of :func:`layer_decay_root` (timm's ``group_matcher``), each at ``lr`` times its
    ``lr_scale`` (``layer_decay ** (layers above it)``, 1 for the head's). Head: with ``head_lr_mult``
    other than 1, each group is split again into its body part and its head part
    (``head_parameters``) at ``head_lr_mult`` times the group's rate. Empty groups are left out.
    """
    by_decay = _by_decay(model, config)
    if config.head_lr_mult == 1.0:
        return [{"name": name, "params": params, "lr": config.lr * scale, "weight_decay": wd}
                for name, params, wd, scale in by_decay]
    head = {id(p) for p in head_parameters(model)}
    groups = []
    for name, params, wd, scale in by_decay:
        body_params = [p for p in params if id(p) not in head]
        head_params = [p for p in params if id(p) in head]
        if body_params:
            groups.append({"name": name, "params": body_params, "lr": config.lr * scale, "weight_decay": wd})
        if head_params:
            groups.append({"name": f"head/{name}", "params": head_params,
                           "lr": config.lr * scale * config.head_lr_mult, "weight_decay": wd})
    return groups


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """``adam`` (``torch.optim.Adam``: weight decay as L2 on the gradient), ``adamw`` (decoupled
    weight decay) or ``sgd`` (momentum 0.9, Nesterov) over :func:`param_groups`."""
    groups = param_groups(model, config)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=SGD_MOMENTUM, nesterov=True)


def schedule_steps(config: TrainConfig, stepping_batches: int) -> tuple[int, int]:
    """(total, warmup) optimiser steps of the schedule, from the steps the training takes
    (Lightning's ``estimated_stepping_batches``): the total is ``schedule_scale`` times those, the
    warmup ``warmup`` of the total, both rounded; so a run of any length keeps the recipe's shares."""
    total = max(1, round(stepping_batches * config.schedule_scale))
    warmup = min(round(total * config.warmup), total - 1)
    if config.scheduler == "onecycle":
        warmup = max(1, warmup)  # OneCycleLR's rising phase needs a step
        total = max(2, total)
    return total, warmup


def lr_factor(step: int, *, scheduler: str, total: int, warmup: int) -> float:
    """The learning rate at optimiser step ``step`` (0 = the first batch) as a fraction of the
    peak, for ``none`` and ``cosine``:

    - warmup, ``step < warmup``: ``(step + 1) / (warmup + 1)``, linear, reaching 1 at ``warmup``;
    - ``none`` afterwards: 1;
    - ``cosine`` afterwards: ``(1 + cos(pi * (step - warmup) / (total - warmup))) / 2``, 0 at ``total``.
    """
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if scheduler == "none":
        return 1.0
    progress = min(step - warmup, total - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, stepping_batches: int
) -> LRScheduler | None:
    """The schedule of ``config``, to step after every batch; ``None`` for ``none`` without warmup
    (the learning rate stays as the optimiser has it).

    ``onecycle`` is ``torch.optim.lr_scheduler.OneCycleLR`` with each group's lr as its peak,
    ``pct_start`` = warmup / total and torch's other defaults (cosine phases, start at peak / 25,
    end at peak / 25e4, momentum — Adam's beta1 — cycled between 0.95 and 0.85).
    """
    total, warmup = schedule_steps(config, stepping_batches)
    if config.scheduler == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        return OneCycleLR(optimizer, max_lr=peaks, total_steps=total, pct_start=warmup / total)
    if config.scheduler == "none" and warmup == 0:
        return None
    return LambdaLR(optimizer, partial(lr_factor, scheduler=config.scheduler, total=total, warmup=warmup))
