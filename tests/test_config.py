"""voc.config: the label and transform settings, their validation, and the difficult policy's one definition."""

from __future__ import annotations

import dataclasses

import pytest
from light_probe import probe

from voc.config import LabelConfig, TransformConfig, difficult_only_label, num_crops
from voc.constants import DIFFICULT_ONLY_LABELS, DIFFICULT_POLICIES, IGNORED, IMAGENET_MEAN, NEGATIVE, POSITIVE


def test_label_config_defaults_and_frozen() -> None:
    config = LabelConfig()
    assert (config.source, config.difficult, config.positive_only) == ("annotations", "negative", False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.source = "imagesets"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"source": "xml"}, r"Unknown label source 'xml'\. Valid values are \['annotations', 'imagesets'\]\."),
        (
            {"difficult": "drop"},
            r"Unknown difficult policy 'drop'\. Valid values are \['negative', 'ignore', 'positive'\]\.",
        ),
    ],
)
def test_label_config_rejects_unknown_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LabelConfig(**kwargs)


def test_difficult_policy_is_defined_once() -> None:
    assert DIFFICULT_POLICIES == tuple(DIFFICULT_ONLY_LABELS) == ("negative", "ignore", "positive")
    assert [difficult_only_label(p) for p in DIFFICULT_POLICIES] == [NEGATIVE, IGNORED, POSITIVE]
    with pytest.raises(ValueError, match=r"Unknown difficult policy None"):
        difficult_only_label(None)  # type: ignore[arg-type]


def test_transform_config_defaults_are_the_course_protocol() -> None:
    config = TransformConfig()
    assert (config.resize, config.crop, config.crop_mode, config.interpolation) == (400, 224, "five", "bilinear")
    assert config.mean == IMAGENET_MEAN and config.hflip and config.rotation == 25.0
    assert (config.num_crops, config.input_size) == (5, 224)


@pytest.mark.parametrize(
    ("mode", "crops", "size"), [("five", 5, 16), ("ten", 10, 16), ("center", 1, 16), ("full", 1, 20)]
)
def test_num_crops_and_input_size(mode: str, crops: int, size: int) -> None:
    config = TransformConfig(resize=20, crop=16, crop_mode=mode)
    assert config.num_crops == num_crops(mode) == crops
    assert config.input_size == size


def test_mean_and_std_become_tuples_of_float() -> None:
    config = TransformConfig(mean=[0, 1, 0.5], std=(1, 1, 1))
    assert config.mean == (0.0, 1.0, 0.5) and all(type(v) is float for v in config.mean + config.std)
    assert hash(config) == hash(TransformConfig(mean=(0.0, 1.0, 0.5), std=(1.0, 1.0, 1.0)))


def test_full_mode_may_have_a_crop_above_resize() -> None:
    assert TransformConfig(resize=112, crop=224, crop_mode="full").input_size == 112


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"crop_mode": "six"}, r"Unknown crop mode 'six'\. Valid values are \['five', 'ten', 'center', 'full'\]"),
        ({"interpolation": "cubic"}, r"Unknown interpolation 'cubic'\. Valid values are \['nearest', 'bilinear'"),
        ({"resize": 100, "crop": 200}, r"crop \(200\) must not exceed resize \(100\)"),
        ({"crop": 0}, r"must be positive"),
        ({"mean": (0.5, 0.5)}, r"mean and std need 3 values each"),
        ({"std": (1.0,) * 4}, r"mean and std need 3 values each"),
    ],
)
def test_transform_config_rejects(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TransformConfig(**kwargs)


def test_torch_free_modules_do_not_load_torch() -> None:
    """The settings, labels, images, metrics and table modules import without torch."""
    run = probe("import voc.config, voc.labels, voc.images, voc.io, voc.metrics, voc.tables, voc.cli")
    assert (run.code, run.heavy) == (0, []), run.proc.stderr
