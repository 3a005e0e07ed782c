"""Optimisers, parameter groups and learning-rate schedules against hand computations."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from bench.model import build_classifier
from bench.weights import Weights
from voc.config import TrainConfig
from voc.module import MultiLabelClassifier
from voc.optim import build_optimizer, build_scheduler, lr_factor, param_groups, schedule_steps


class _Tiny(nn.Module):
    """conv (weight, bias) -> batch norm (weight, bias) -> a 1-D scale -> a 3-D position table ->
    linear head (weight, bias); the position table is declared no-decay as a ViT's would be."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.norm = nn.BatchNorm2d(4)
        self.scale = nn.Parameter(torch.ones(4))
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 1))
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x)).mean(dim=(2, 3)) * self.scale + self.pos_embed[:, :, 0]
        return self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}


def _ids(params: list[nn.Parameter]) -> set[int]:
    return {id(p) for p in params}


def _groups(model: nn.Module, **config: object) -> dict[str, dict]:
    return {g["name"]: g for g in param_groups(model, TrainConfig(**config))}


def test_without_weight_decay_or_head_multiplier_one_group_holds_every_parameter() -> None:
    model = _Tiny()
    groups = param_groups(model, TrainConfig(lr=0.1))
    assert len(groups) == 1 and groups[0]["lr"] == 0.1 and groups[0]["weight_decay"] == 0.0
    assert _ids(groups[0]["params"]) == _ids(list(model.parameters()))


def test_weight_decay_is_zero_on_biases_norms_and_declared_parameters() -> None:
    m = _Tiny()
    groups = _groups(m, weight_decay=0.01)
    assert set(groups) == {"decay", "no_decay"}
    assert groups["decay"]["weight_decay"] == 0.01 and groups["no_decay"]["weight_decay"] == 0.0
    assert _ids(groups["decay"]["params"]) == _ids([m.conv.weight, m.head.weight])
    assert _ids(groups["no_decay"]["params"]) == _ids(
        [m.conv.bias, m.norm.weight, m.norm.bias, m.scale, m.pos_embed, m.head.bias]
    )


@pytest.mark.parametrize("name", ["test_vit", "test_resnet"])
def test_weight_decay_of_a_timm_backbone_skips_every_bias_and_norm(name: str) -> None:
    model, _ = build_classifier(name, Weights("random", "random init"))
    groups = _groups(model, weight_decay=0.05, head_lr_mult=10.0)
    decayed = {id(p) for g in groups.values() if g["weight_decay"] > 0 for p in g["params"]}
    for param_name, p in model.named_parameters():
        norm_or_bias = p.ndim <= 1 or param_name.endswith(".bias") or "norm" in param_name or "bn" in param_name
        if norm_or_bias or param_name.endswith(("pos_embed", "cls_token")):
            assert id(p) not in decayed, param_name
        else:
            assert id(p) in decayed, param_name
    head = model.get_classifier()
    assert _ids(groups["head/decay"]["params"]) == {id(head.weight)}
    assert _ids(groups["head/no_decay"]["params"]) == {id(head.bias)}
    every = [p for g in groups.values() for p in g["params"]]
    assert len(every) == len(_ids(every)) == len(list(model.parameters()))  # each parameter exactly once


@pytest.mark.parametrize("name", ["test_efficientnet", "test_resnet"])
def test_layer_decay_groups_are_timms_and_hold_every_parameter_once(name: str) -> None:
    """Each parameter's rate is ``lr`` times the ``lr_scale`` timm's own ``param_groups_layer_decay``
    gives it on the backbone (the head's times ``head_lr_mult``), its decay timm's; none is left out
    or given twice."""
    from timm.optim import param_groups_layer_decay

    model, _ = build_classifier(name, Weights("random", "random init"))
    config = TrainConfig(lr=0.1, weight_decay=0.05, layer_decay=0.75, head_lr_mult=10.0)
    groups = param_groups(model, config)
    every = [p for g in groups for p in g["params"]]
    assert len(every) == len({id(p) for p in every}) == len(list(model.parameters()))
    timm_groups = param_groups_layer_decay(model.backbone, weight_decay=0.05, layer_decay=0.75)
    expected = {id(p): (g["lr_scale"], g["weight_decay"]) for g in timm_groups for p in g["params"]}
    assert len({scale for scale, _ in expected.values()}) > 2  # several layers, several rates
    head = {id(p) for p in model.get_classifier().parameters()}
    for group in groups:
        for p in group["params"]:
            scale, decay = expected[id(p)]
            assert group["lr"] == pytest.approx(0.1 * scale * (10.0 if id(p) in head else 1.0))
            assert group["weight_decay"] == decay
    assert all(expected[i][0] == 1.0 for i in head)  # the head is in the top layer group


def test_head_multiplier_needs_a_head() -> None:
    with pytest.raises(ValueError, match=r"has no get_classifier\(\)"):
        param_groups(nn.Linear(2, 2), TrainConfig(head_lr_mult=10.0))


def _step_once(optimizer: str, **config: object) -> tuple[_Tiny, dict[str, torch.Tensor]]:
    """One optimiser step from known weights with gradient 0.5 on conv.weight and head.weight,
    -0.25 on conv.bias; returns the model and the weights before the step."""
    torch.manual_seed(0)
    model = _Tiny()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = build_optimizer(model, TrainConfig(optimizer=optimizer, **config))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    model.conv.weight.grad.fill_(0.5)
    model.head.weight.grad.fill_(0.5)
    model.conv.bias.grad.fill_(-0.25)
    opt.step()
    return model, before


LR, WD, MULT = 0.1, 0.2, 10.0


def test_adam_first_step_adds_the_decay_to_the_gradient() -> None:
    model, w0 = _step_once("adam", lr=LR, weight_decay=WD, head_lr_mult=MULT)
    eps = 1e-8
    # Adam's first step: m_hat = g, v_hat = g^2, so w1 = w0 - lr * g / (|g| + eps), g = grad + wd * w0 (L2)
    g = 0.5 + WD * w0["conv.weight"]
    torch.testing.assert_close(model.conv.weight.detach(), w0["conv.weight"] - LR * g / (g.abs() + eps))
    g = 0.5 + WD * w0["head.weight"]  # head: lr x 10
    torch.testing.assert_close(model.head.weight.detach(), w0["head.weight"] - LR * MULT * g / (g.abs() + eps))
    # bias: no decay, so a step of exactly lr against the gradient's sign
    torch.testing.assert_close(model.conv.bias.detach(), w0["conv.bias"] + LR * 0.25 / (0.25 + eps))
    torch.testing.assert_close(model.norm.weight.detach(), w0["norm.weight"])  # zero gradient, no decay


def test_adamw_first_step_decays_the_weights_apart_from_the_gradient() -> None:
    model, w0 = _step_once("adamw", lr=LR, weight_decay=WD, head_lr_mult=MULT)
    eps = 1e-8
    expected = w0["conv.weight"] * (1 - LR * WD) - LR * 0.5 / (0.5 + eps)
    torch.testing.assert_close(model.conv.weight.detach(), expected)
    expected = w0["head.weight"] * (1 - LR * MULT * WD) - LR * MULT * 0.5 / (0.5 + eps)
    torch.testing.assert_close(model.head.weight.detach(), expected)
    torch.testing.assert_close(model.conv.bias.detach(), w0["conv.bias"] + LR * 0.25 / (0.25 + eps))


def test_sgd_first_step_is_nesterov_with_momentum_0_9() -> None:
    model, w0 = _step_once("sgd", lr=LR, weight_decay=WD)
    # first step: buffer b = g; Nesterov's direction g + 0.9 b = 1.9 g, g = grad + wd * w0
    g = 0.5 + WD * w0["conv.weight"]
    torch.testing.assert_close(model.conv.weight.detach(), w0["conv.weight"] - LR * 1.9 * g)
    torch.testing.assert_close(model.conv.bias.detach(), w0["conv.bias"] + LR * 1.9 * 0.25)
    opt = build_optimizer(model, TrainConfig(optimizer="sgd"))
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is True


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1 / 3), (1, 2 / 3),  # linear warmup over 2 steps: (s + 1) / 3
        (2, 1.0),  # the peak
        (4, (1 + math.cos(math.pi * 2 / 8)) / 2),  # 0.8536
        (6, 0.5),  # half way through the 8 steps of decay
        (9, (1 + math.cos(math.pi * 7 / 8)) / 2),  # 0.0381, the last trained step
        (10, 0.0),
    ],
)
def test_cosine_with_warmup_by_the_formula(step: int, expected: float) -> None:
    assert lr_factor(step, scheduler="cosine", total=10, warmup=2) == pytest.approx(expected, abs=1e-12)


def test_none_with_warmup_stays_at_the_peak() -> None:
    factors = [lr_factor(s, scheduler="none", total=10, warmup=3) for s in range(6)]
    assert factors == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_schedule_length_and_warmup_in_steps() -> None:
    # 400 steps trained of a schedule twice as long, its first 20 % the rise (voc07's 40 of 80 epochs, 16 rising)
    config = TrainConfig(scheduler="onecycle", warmup=0.2, schedule_scale=2.0)
    assert schedule_steps(config, stepping_batches=400) == (800, 160)
    assert schedule_steps(TrainConfig(scheduler="cosine", warmup=1 / 6), 30) == (30, 5)
    with pytest.raises(ValueError, match=r"schedule_scale must be at least 1"):
        TrainConfig(scheduler="cosine", schedule_scale=0.5)
    with pytest.raises(ValueError, match=r"warmup is a share"):
        TrainConfig(scheduler="cosine", warmup=1.0)


@pytest.mark.parametrize("steps_per_epoch", [7, 40, 125])
def test_a_short_run_of_a_recipe_warms_up_for_the_same_share(steps_per_epoch: int) -> None:
    """A 3-epoch run of a 20-epoch recipe (modern's 5 % warmup, cosine) reaches its peak after the same
    share of its steps as the full run, and its rate falls to 0 at its own end."""
    config = TrainConfig(lr=1.0, scheduler="cosine", warmup=0.05)
    shares = []
    for epochs in (3, 20):
        steps = epochs * steps_per_epoch
        lrs = [lrs[0] for lrs in _lrs_over(config, stepping_batches=steps, steps=steps)]
        peak_at = lrs.index(max(lrs))
        shares.append(peak_at / steps)
        assert lrs[-1] < 0.01 * max(lrs)
        assert peak_at == round(0.05 * steps)  # the first step at the full rate
    assert shares[0] == pytest.approx(shares[1], abs=1 / (3 * steps_per_epoch))


def _lrs_over(config: TrainConfig, stepping_batches: int, steps: int) -> list[list[float]]:
    """Each group's learning rate at each of the first ``steps`` optimiser steps."""
    model = _Tiny()
    opt = build_optimizer(model, config)
    scheduler = build_scheduler(opt, config, stepping_batches)
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        scheduler.step()
    return seen


def _onecycle(step: int, peak: float, total: int, warmup: int) -> float:
    """torch's OneCycleLR by its definition: from peak/25 up to the peak at step warmup - 1 and down
    to peak/25/1e4 at step total - 1, both along half cosines."""
    initial, final = peak / 25, peak / 25 / 1e4
    rise_end = warmup - 1
    if step <= rise_end:
        return initial + (peak - initial) * (1 - math.cos(math.pi * step / rise_end)) / 2
    return final + (peak - final) * (1 + math.cos(math.pi * (step - rise_end) / (total - 1 - rise_end))) / 2


def test_onecycle_lr_at_given_steps_and_a_schedule_stopped_half_way() -> None:
    # 10 epochs of 4 steps trained of a 20-epoch schedule (80 steps) rising for 4 epochs (16 steps)
    config = TrainConfig(lr=1e-3, scheduler="onecycle", warmup=0.2, schedule_scale=2.0, head_lr_mult=10.0)
    seen = _lrs_over(config, stepping_batches=40, steps=40)
    for step in (0, 7, 15, 16, 30, 39):
        body, head = seen[step][0], seen[step][-1]
        assert body == pytest.approx(_onecycle(step, 1e-3, 80, 16), rel=1e-9)
        assert head == pytest.approx(_onecycle(step, 1e-2, 80, 16), rel=1e-9)
    assert seen[0][0] == pytest.approx(4e-5) and seen[15][0] == pytest.approx(1e-3)  # peak / 25, then the peak
    assert seen[39][0] > 4e-4  # stopped half way, the rate still above peak / 2.5


def test_cosine_scheduler_steps_every_group_by_the_factor() -> None:
    config = TrainConfig(lr=0.1, scheduler="cosine", warmup=0.2, head_lr_mult=2.0)
    seen = _lrs_over(config, stepping_batches=10, steps=10)  # warmup 2 of the 10 steps
    for step, lrs in enumerate(seen):
        factor = lr_factor(step, scheduler="cosine", total=10, warmup=2)
        assert lrs == pytest.approx([0.1 * factor, 0.2 * factor])


def test_no_schedule_without_warmup_leaves_the_optimiser_alone() -> None:
    opt = build_optimizer(_Tiny(), TrainConfig())
    assert build_scheduler(opt, TrainConfig(), 10) is None


class _LrRecorder(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:  # noqa: ANN001
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


class _CropModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 20)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.head(crops.mean(dim=(1, 3, 4)))


def _batches(n: int, batch: int = 2) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = [(i, torch.randn(1, 3, 2, 2, generator=g), (torch.rand(20, generator=g) > 0.5).float()) for i in range(n)]
    return DataLoader(data, batch_size=batch)


def test_lightning_steps_the_schedule_after_every_batch_over_its_stepping_batches() -> None:
    torch.manual_seed(0)
    module = MultiLabelClassifier(_CropModel(), lr=0.1, scheduler="cosine", warmup=1 / 3)
    recorder = _LrRecorder()
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[recorder])
    trainer.fit(module, train_dataloaders=_batches(8))  # 4 steps an epoch, 12 in all, warmup 4
    expected = [0.1 * lr_factor(s, scheduler="cosine", total=12, warmup=4) for s in range(12)]
    assert recorder.lrs == pytest.approx(expected)
