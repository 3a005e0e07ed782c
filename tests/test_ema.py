"""The EMA of the weights against its closed form, and the reported model: the declared one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from voc.config import TrainConfig
from voc.ema import build_ema, update_ema
from voc.metrics import evaluate
from voc.module import MultiLabelClassifier


def _closed_form(weights: list[torch.Tensor], decay: float) -> torch.Tensor:
    """d^n w_0 + (1 - d) sum_{k=1..n} d^(n-k) w_k: the average after n steps from the copy w_0."""
    n = len(weights) - 1
    total = decay**n * weights[0]
    for k in range(1, n + 1):
        total = total + (1 - decay) * decay ** (n - k) * weights[k]
    return total


def test_ema_equals_the_closed_form_average_after_n_steps() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    config = TrainConfig(ema_decay=0.8)
    ema = build_ema(model, config)
    history = [copy.deepcopy(model.state_dict())]
    for step in range(1, 6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(4, 3))  # batch norm's running statistics move too
        history.append(copy.deepcopy(model.state_dict()))
        update_ema(ema, model, config, step)
    averaged = ema.module.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var"):
        torch.testing.assert_close(averaged[key], _closed_form([h[key] for h in history], 0.8))
    assert averaged["1.num_batches_tracked"] == 5  # integer buffers are copied
    assert not any(p.requires_grad for p in ema.parameters())


def test_ema_warmup_copies_at_the_first_step_then_follows_timms_decay() -> None:
    model = nn.Linear(1, 1, bias=False)
    config = TrainConfig(ema_decay=0.9999, ema_warmup=True)
    ema = build_ema(model, config)
    with torch.no_grad():
        model.weight.fill_(1.0)
    update_ema(ema, model, config, 1)
    assert ema.module.weight.item() == pytest.approx(1.0)  # d_1 = 0: a copy
    with torch.no_grad():
        model.weight.fill_(3.0)
    update_ema(ema, model, config, 2)
    d2 = 1 - 2 ** (-2 / 3)  # 0.370
    assert ema.module.weight.item() == pytest.approx(d2 * 1.0 + (1 - d2) * 3.0)


def test_no_ema_by_default() -> None:
    assert build_ema(nn.Linear(1, 1), TrainConfig()) is None
    assert MultiLabelClassifier(nn.Linear(1, 1)).ema is None


class _CropLinear(nn.Module):
    """Logits = the crops' mean pixel per channel @ weight (3 -> 20)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 20, bias=False)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.head(crops.mean(dim=(1, 3, 4)))


def _data(n: int = 12) -> DataLoader:
    """Images whose labels the first channel decides: class c is positive where x0 > 0 (even c) or x0 < 0
    (odd c); a model with weight +1 / -1 on x0 ranks them perfectly."""
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        x0 = (i - n / 2 + 0.5) / n
        crops = torch.full((1, 3, 2, 2), x0)
        crops[:, 1:] = torch.randn(2, 1, 1, generator=g)
        labels = torch.tensor([float(x0 > 0) if c % 2 == 0 else float(x0 < 0) for c in range(20)])
        items.append((i, crops, labels))
    return DataLoader(items, batch_size=4)


def _trainer(**kwargs: object) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, **kwargs)


def _module_with(raw_sign: float, ema_sign: float, report_model: str) -> MultiLabelClassifier:
    module = MultiLabelClassifier(_CropLinear(), ema_decay=0.5, report_model=report_model)
    signs = torch.tensor([1.0 if c % 2 == 0 else -1.0 for c in range(20)])
    with torch.no_grad():
        for model, sign in ((module.model, raw_sign), (module.ema.module, ema_sign)):
            model.head.weight.zero_()
            model.head.weight[:, 0] = sign * signs
    return module


@pytest.mark.parametrize(("report_model", "raw_sign", "ema_sign"), [("ema", 1.0, -1.0), ("raw", -1.0, 1.0)])
def test_the_reported_model_is_the_declared_one_whatever_the_eval_maps(
    report_model: str, raw_sign: float, ema_sign: float
) -> None:
    # the declared model is the worse one: a perfect ranking against an inverted one
    module = _module_with(raw_sign, ema_sign, report_model)
    _trainer().test(module, dataloaders=_data(), verbose=False)
    other = "raw" if report_model == "ema" else "ema"
    assert module.eval_results[other]["mAP"] == pytest.approx(1.0)
    assert module.eval_results[report_model]["mAP"] < 0.5
    assert module.eval_metrics is module.eval_results[report_model]
    assert module.eval_output is module.eval_outputs[report_model]
    # its predictions are the ones scored: re-scoring them gives the reported metrics
    out = module.eval_output
    assert evaluate(out.scores, out.labels)["mAP"] == module.eval_metrics["mAP"]
    summary = module.eval_summary()
    assert summary["reported"] == report_model and set(summary) == {"reported", "raw", "ema"}
    assert summary[report_model]["mAP"] == module.eval_metrics["mAP"]


def test_lightning_updates_the_ema_after_every_optimiser_step() -> None:
    torch.manual_seed(0)
    module = MultiLabelClassifier(_CropLinear(), lr=0.05, optimizer="sgd", ema_decay=0.7)
    history = [module.model.head.weight.detach().clone()]

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
            history.append(pl_module.model.head.weight.detach().clone())

    _trainer(max_epochs=2, callbacks=[Record()]).fit(module, train_dataloaders=_data())
    assert len(history) == 7  # the initial weights and 2 epochs x 3 steps
    assert not torch.equal(history[-1], history[0])
    torch.testing.assert_close(module.ema.module.head.weight, _closed_form(history, 0.7))
    # evaluation scores both, logged under their own names
    _trainer().test(module, dataloaders=_data(), verbose=False)
    assert set(module.eval_results) == {"raw", "ema"}
    assert not np.array_equal(module.eval_outputs["raw"].scores, module.eval_outputs["ema"].scores)
