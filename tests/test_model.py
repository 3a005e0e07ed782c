"""The crop-max classifier, the loss, and building timm backbones into them."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.model import CropMaxClassifier, build_classifier, count_parameters
from bench.weights import Weights
from voc.module import MultiLabelClassifier, multilabel_bce_loss

RANDOM = Weights("random", "random init")


class _PerCropLinear(nn.Module):
    """A stand-in backbone: logits = crop pixels summed per channel @ weight."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.sum(dim=(2, 3)))


def test_crop_max_takes_the_max_logit_over_crops() -> None:
    torch.manual_seed(0)
    backbone = _PerCropLinear()
    model = CropMaxClassifier(backbone)
    crops = torch.randn(2, 5, 3, 8, 8)
    logits = model(crops)
    assert logits.shape == (2, 4)
    per_crop = torch.stack([backbone(crops[:, k]) for k in range(5)], dim=1)  # [2, 5, 4]
    torch.testing.assert_close(logits, per_crop.max(dim=1).values)


def test_max_then_sigmoid_equals_seed_sigmoid_then_max() -> None:
    torch.manual_seed(1)
    backbone = _PerCropLinear()
    crops = torch.randn(3, 10, 3, 4, 4)
    ours = torch.sigmoid(CropMaxClassifier(backbone)(crops))
    seed = torch.stack([torch.sigmoid(backbone(crops[:, k])) for k in range(10)], dim=1).max(dim=1).values
    torch.testing.assert_close(ours, seed)


def test_crop_max_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"\[B, K, 3, H, W\]"):
        CropMaxClassifier(_PerCropLinear())(torch.randn(2, 3, 8, 8))


def test_loss_equals_seed_per_class_bce_loop() -> None:
    torch.manual_seed(2)
    logits = torch.randn(8, 20) * 3
    targets = (torch.rand(8, 20) > 0.7).float()
    probs = torch.sigmoid(logits)
    seed_loss = sum(nn.BCELoss()(probs[:, c], targets[:, c]) for c in range(20)) / 20
    torch.testing.assert_close(multilabel_bce_loss(logits, targets), seed_loss)


def test_loss_leaves_out_ignored_entries() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    targets = torch.tensor([[1.0, -1.0], [0.0, 1.0]])
    kept = [(2.0, 1.0), (0.5, 0.0), (3.0, 1.0)]
    expected = sum(
        nn.functional.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y)) for x, y in kept
    ) / 3
    torch.testing.assert_close(multilabel_bce_loss(logits, targets), expected)


def test_loss_is_finite_for_extreme_logits() -> None:
    logits = torch.tensor([[1e4, -1e4]])
    assert torch.isfinite(multilabel_bce_loss(logits, torch.tensor([[0.0, 1.0]])))


@pytest.mark.parametrize("name", ["test_resnet", "test_efficientnet", "test_vit"])
def test_timm_backbone_in_crop_max_wrapper(name: str) -> None:
    torch.manual_seed(0)
    model, data_config = build_classifier(name, RANDOM)
    assert isinstance(model, CropMaxClassifier)
    size = 160 if name == "test_vit" else 64
    with torch.no_grad():
        logits = model(torch.randn(2, 5, 3, size, size))
    assert logits.shape == (2, 20)
    assert len(data_config.mean) == len(data_config.std) == 3
    assert count_parameters(model) > 0


class _FixedLogits(nn.Module):
    """A stand-in model that returns the same chosen logits for any crops."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits.clone())

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.logits


def _bce(logit: float, target: float) -> float:
    """-[y log p + (1 - y) log(1 - p)] with p = 1 / (1 + e^-x), by the formula."""
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_lightning_module_training_step_is_the_mean_bce_over_labelled_entries() -> None:
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, -3.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]])  # -1: ignored, left out of the mean
    module = MultiLabelClassifier(_FixedLogits(logits))
    module.log = lambda *a, **k: None  # no trainer attached
    loss = module.training_step((torch.arange(2), torch.zeros(2, 1, 3, 4, 4), targets), 0)
    labelled = [(0.0, 1), (2.0, 0), (1.0, 0), (-3.0, 1), (0.5, 1)]
    expected = sum(_bce(x, y) for x, y in labelled) / len(labelled)
    assert expected == pytest.approx(1.5312, abs=1e-4)  # (0.6931 + 2.1269 + 1.3133 + 3.0486 + 0.4741) / 5
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()  # the loss is the one the optimiser follows: its gradient reaches the model
    assert module.model.logits.grad is not None
    # d loss / d x = (sigmoid(x) - y) / 5 on a labelled entry, 0 on the ignored one
    assert module.model.logits.grad[0, 2].item() == 0.0
    assert module.model.logits.grad[0, 0].item() == pytest.approx((0.5 - 1) / 5, rel=1e-6)


def test_lightning_module_training_step_of_a_timm_backbone_is_bce_on_its_probabilities() -> None:
    torch.manual_seed(0)
    model, _ = build_classifier("test_resnet", RANDOM)
    module = MultiLabelClassifier(model)
    module.log = lambda *a, **k: None
    crops = torch.randn(2, 1, 3, 64, 64)
    targets = torch.tensor([[1.0] * 10 + [0.0] * 10, [0.0] * 19 + [-1.0]])
    loss = module.training_step((torch.arange(2), crops, targets), 0)
    with torch.no_grad():
        probs = torch.sigmoid(model(crops)).double()
    keep = targets != -1
    expected = nn.BCELoss()(probs[keep], targets[keep].double())  # the 39 labelled entries
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["test_resnet", "test_vit"])
def test_bf16_autocast_logits_do_not_tie_where_fp32_does_not(name: str) -> None:
    """The head runs in fp32 under bf16 autocast: no ties that the fp32 model does not have."""
    torch.manual_seed(0)
    classifier, _ = build_classifier(name, Weights("random", "random init"), input_size=64)
    classifier.eval()
    crops = torch.randn(64, 1, 3, 64, 64)
    with torch.inference_mode():
        fp32 = classifier(crops)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = classifier(crops)
    assert bf16.dtype == torch.float32

    def tied(logits: torch.Tensor) -> int:
        return sum(int(len(col) - len(torch.unique(col))) for col in logits.T)

    assert tied(fp32) == 0
    assert tied(bf16) == 0
    # a bf16 classifier output (what the head gave before) ties many of these same images
    assert tied(bf16.to(torch.bfloat16).float()) > 0
