"""The training losses against their formulas on hand-chosen logits: BCE and the asymmetric loss."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from voc.config import TrainConfig
from voc.losses import asymmetric_loss, build_loss, multilabel_bce_loss
from voc.module import MultiLabelClassifier

# one image: a positive, three negatives (above, well above and below the clip), an ignored entry
LOGITS = [2.0, -1.0, 0.0, -4.0, 3.0]
TARGETS = [1.0, 0.0, 0.0, 0.0, -1.0]


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _asl_entry(x: float, y: float, gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05) -> float:
    """Ridnik et al.'s ASL of one entry, by the paper's formula: L+ = (1-p)^g+ log(p) for a positive,
    L- = p_m^g- log(1 - p_m), p_m = max(p - m, 0) for a negative; the loss is -L."""
    p = _sigmoid(x)
    if y == 1:
        return -((1 - p) ** gamma_pos) * math.log(p)
    p_m = max(p - clip, 0.0)
    return -(p_m**gamma_neg) * math.log(1 - p_m)


def _asl_grad(x: float, y: float, gamma_neg: float = 4.0, clip: float = 0.05) -> float:
    """d loss / d x with the focusing weight held constant (disable_torch_grad_focal_loss), gamma_pos 0:
    positive: -(1 - p); negative above the clip: p_m^g- * p (1 - p) / (1 - p_m); below it: 0."""
    p = _sigmoid(x)
    if y == 1:
        return -(1 - p)
    p_m = max(p - clip, 0.0)
    return 0.0 if p_m == 0 else p_m**gamma_neg * p * (1 - p) / (1 - p_m)


def test_asl_value_is_the_sum_of_the_formula_over_labelled_entries() -> None:
    expected = sum(_asl_entry(x, y) for x, y in zip(LOGITS, TARGETS, strict=True) if y != -1)
    # by hand: 0.126928 (positive, -log sigmoid 2) + 0.000568 (p = 0.2689) + 0.024515 (p = 0.5) + 0 (p = 0.018 < 0.05)
    assert expected == pytest.approx(0.126928 + 0.000568 + 0.024515, abs=2e-6)
    loss = asymmetric_loss(torch.tensor([LOGITS]), torch.tensor([TARGETS]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_asl_gradient_signs_and_values() -> None:
    logits = torch.tensor([LOGITS], requires_grad=True)
    asymmetric_loss(logits, torch.tensor([TARGETS])).backward()
    grad = logits.grad[0].tolist()
    assert grad[0] < 0  # positive: raising its logit lowers the loss
    assert grad[1] > 0 and grad[2] > 0  # negatives above the clip: pushed down
    assert grad[2] > grad[1]  # the harder negative (p = 0.5) more than the easier one (p = 0.27)
    assert grad[3] == 0.0  # a negative with p below the clip is discarded
    assert grad[4] == 0.0  # ignored
    for g, x, y in zip(grad[:4], LOGITS[:4], TARGETS[:4], strict=True):
        assert g == pytest.approx(_asl_grad(x, y), rel=1e-4, abs=1e-9)


def test_asl_without_focusing_or_clip_is_the_summed_bce() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 20) * 3
    targets = (torch.rand(4, 20) > 0.7).float()
    targets[0, 3] = -1
    plain = asymmetric_loss(logits, targets, gamma_neg=0.0, gamma_pos=0.0, clip=0.0)
    torch.testing.assert_close(plain, multilabel_bce_loss(logits, targets) * 79, rtol=1e-5, atol=1e-4)


def test_asl_focusing_weight_carries_no_gradient() -> None:
    # with the weight differentiated too, a negative at p = 0.5 would get an extra
    # 4 p_m^3 p(1-p) (-log(1-p_m)) > 0: the gradient would be larger than the formula's
    x = torch.tensor([[0.0]], requires_grad=True)
    asymmetric_loss(x, torch.tensor([[0.0]])).backward()
    assert x.grad.item() == pytest.approx(_asl_grad(0.0, 0.0), rel=1e-5)
    p_m = 0.45
    with_weight_grad = _asl_grad(0.0, 0.0) + 4 * p_m**3 * 0.25 * -math.log(1 - p_m)
    assert x.grad.item() < with_weight_grad - 1e-3


def test_build_loss_and_the_training_step_use_the_configured_loss() -> None:
    logits, targets = torch.tensor([LOGITS]), torch.tensor([TARGETS])
    assert build_loss(TrainConfig()) is multilabel_bce_loss
    asl = build_loss(TrainConfig(loss="asl", asl_gamma_neg=2.0, asl_clip=0.0))
    assert asl(logits, targets).item() == pytest.approx(
        sum(_asl_entry(x, y, gamma_neg=2.0, clip=0.0) for x, y in zip(LOGITS, TARGETS, strict=True) if y != -1),
        rel=1e-5,
    )

    class Fixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.logits = nn.Parameter(logits.clone())

        def forward(self, crops: torch.Tensor) -> torch.Tensor:
            return self.logits

    module = MultiLabelClassifier(Fixed(), loss="asl")
    module.log = lambda *a, **k: None  # no trainer attached
    loss = module.training_step((torch.arange(1), torch.zeros(1, 1, 3, 2, 2), targets), 0)
    assert loss.item() == pytest.approx(asymmetric_loss(logits, targets).item(), rel=1e-6)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"asl_gamma_neg": 2.0}, r"apply only with loss 'asl'"),
        ({"loss": "asl", "asl_clip": 1.0}, r"clip in \[0, 1\)"),
        ({"loss": "focal"}, r"Unknown loss 'focal'. Valid values are \['bce', 'asl'\]"),
    ],
)
def test_loss_settings_are_checked(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)
