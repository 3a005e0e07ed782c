"""The protocol's transforms: sizes, crop modes, normalisation, augmentation."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch
from PIL import Image

from voc.config import CROP_MODES, INTERPOLATION_NAMES, TransformConfig, num_crops
from voc.transforms import INTERPOLATIONS, MultiCropTransform, build_transform, resized_size


def _transform(train: bool, **config: object) -> MultiCropTransform:
    return build_transform(TransformConfig(**config), train=train)


def _image(width: int = 50, height: int = 40) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("mode", "shape"),
    [("five", (5, 3, 16, 16)), ("ten", (10, 3, 16, 16)), ("center", (1, 3, 16, 16)), ("full", (1, 3, 20, 20))],
)
@pytest.mark.parametrize("train", [False, True])
def test_output_shape_per_crop_mode(mode: str, shape: tuple[int, ...], train: bool) -> None:
    out = _transform(train, resize=20, crop=16, crop_mode=mode)(_image())
    assert out.shape == shape
    assert out.dtype == torch.float32
    assert num_crops(mode) == shape[0]


def test_course_default_is_resize_400_five_crop_224() -> None:
    out = _transform(False)(_image(500, 375))
    assert out.shape == (5, 3, 224, 224)


@pytest.mark.parametrize(
    ("size", "expected"), [((500, 375), (533, 400)), ((375, 500), (400, 533)), ((400, 400), (400, 400))]
)
def test_resize_keeps_aspect_on_shortest_edge(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert resized_size(*size, 400, "five") == expected
    assert resized_size(*size, 400, "full") == (400, 400)


def test_five_crop_corners_and_normalisation_by_hand() -> None:
    # 4x4 image, crop 2: the top-left crop is pixels [0:2, 0:2]; normalised = (x/255 - mean) / std.
    pixels = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3) * 5
    mean, std = (0.5, 0.25, 0.0), (0.5, 0.25, 1.0)
    out = _transform(False, resize=4, crop=2, crop_mode="five", mean=mean, std=std, interpolation="nearest")(
        Image.fromarray(pixels)
    )
    top_left = pixels[0:2, 0:2].transpose(2, 0, 1) / 255.0
    expected = (top_left - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-5, atol=1e-5)
    bottom_right = (
        (pixels[2:4, 2:4].transpose(2, 0, 1) / 255.0 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    )
    np.testing.assert_allclose(out[3].numpy(), bottom_right, rtol=1e-5, atol=1e-5)


def test_ten_crop_adds_mirrored_crops() -> None:
    out = _transform(False, resize=20, crop=16, crop_mode="ten")(_image(40, 40))
    # torchvision's ten_crop: the five crops of the mirrored image; its top-left crop is the
    # mirror of the original's top-right crop, and the centre crops mirror each other.
    torch.testing.assert_close(out[5], out[1].flip(-1))
    torch.testing.assert_close(out[9], out[4].flip(-1))


def test_eval_transform_is_deterministic_and_train_is_random() -> None:
    image = _image()
    ev = _transform(False, resize=20, crop=16)
    torch.testing.assert_close(ev(image), ev(image))
    tr = _transform(True, resize=20, crop=16)
    torch.manual_seed(0)
    outs = [tr(image) for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    torch.manual_seed(0)
    torch.testing.assert_close(tr(image), outs[0])  # seeded: reproducible


def test_no_augmentation_when_disabled() -> None:
    image = _image()
    plain = _transform(True, resize=20, crop=16, hflip=False, rotation=0.0)
    torch.testing.assert_close(plain(image), _transform(False, resize=20, crop=16)(image))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"crop_mode": "six"}, "Unknown crop mode 'six'"),
        ({"interpolation": "cubic"}, "Unknown interpolation"),
        ({"resize": 100, "crop": 200}, "must not exceed resize"),
        ({"resize": 0}, "must be positive"),
        ({"augment": "autoaugment"}, r"Unknown augment 'autoaugment'. Valid values are \['basic', 'randaugment'\]"),
        ({"augment": "randaugment", "randaugment": "rand-x9"}, "a timm RandAugment string"),
        ({"randaugment": "rand-m5"}, "applies only with augment='randaugment'"),
        ({"erasing": 1.5}, r"erasing is a probability in \[0, 1\]"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _transform(False, **kwargs)


def test_all_modes_listed() -> None:
    assert set(CROP_MODES) == {"five", "ten", "center", "full"}


def test_every_interpolation_name_has_a_pil_filter() -> None:
    assert tuple(INTERPOLATIONS) == INTERPOLATION_NAMES


def test_transform_pickles_with_its_config() -> None:
    transform = _transform(True, resize=20, crop=16, crop_mode="ten", mean=[0.5, 0.5, 0.5])
    copy = pickle.loads(pickle.dumps(transform))
    assert copy == transform and copy.config.mean == (0.5, 0.5, 0.5) and copy.train
    assert copy.num_crops == 10 and copy.decode_size(50, 40) == (25, 20)
    torch.manual_seed(1)
    a = transform(_image())
    torch.manual_seed(1)
    torch.testing.assert_close(copy(_image()), a)


def _seeded(transform: MultiCropTransform, image: Image.Image, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    random.seed(seed)  # RandAugment and RandomErasing draw from Python's generator, RandAugment from numpy's too
    np.random.seed(seed)
    return transform(image)


def test_basic_augment_builds_no_randaugment_or_erasing() -> None:
    transform = _transform(True, resize=20, crop=16)
    assert transform.config.augment == "basic" and transform.config.erasing == 0.0
    assert transform._randaugment is None and transform._erasing is None


def test_randaugment_changes_training_images_only() -> None:
    image = _image(64, 48)
    settings = {"resize": 32, "crop": 32, "crop_mode": "full", "hflip": False, "rotation": 0.0}
    plain = _transform(True, **settings)
    rand = _transform(True, **settings, augment="randaugment", randaugment="rand-m9-n2-p1.0")
    assert rand._randaugment is not None
    assert not torch.equal(_seeded(rand, image), _seeded(plain, image))  # two ops, each always applied
    torch.testing.assert_close(_seeded(rand, image, 5), _seeded(rand, image, 5))  # seeded: reproducible
    evaluation = _transform(False, **settings, augment="randaugment", erasing=1.0)
    assert evaluation._randaugment is None and evaluation._erasing is None
    torch.testing.assert_close(evaluation(image), _transform(False, **settings)(image))


def test_erasing_replaces_one_box_of_each_crop_and_nothing_else() -> None:
    image = _image(80, 80)
    settings = {"resize": 40, "crop": 32, "crop_mode": "five"}
    erased = _seeded(_transform(True, **settings, erasing=1.0), image)
    plain = _seeded(_transform(True, **settings), image)  # the same draws up to the erasing
    for k in range(5):
        changed = (erased[k] != plain[k]).any(dim=0)
        rows, cols = changed.any(dim=1).nonzero(), changed.any(dim=0).nonzero()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert 0 < changed.sum() <= box  # inside one rectangle
        assert int(box) <= 32 * 32 / 3 + 32  # of at most a third of the crop (timm's max_area, rounded)


def test_the_modern_protocols_randaugment_never_fails() -> None:
    # timm's increasing posterize keeps 0 bits at magnitude 10, which Pillow refuses; mmax9 caps it
    from PIL import Image
    from timm.data.auto_augment import rand_augment_transform

    from bench.protocols.finetune import CPU_MODERN_PROTOCOL, MODERN_PROTOCOL

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    for protocol in (MODERN_PROTOCOL, CPU_MODERN_PROTOCOL):
        augment = rand_augment_transform(protocol.randaugment, {"translate_const": 14, "img_mean": (124, 116, 104)})
        for _ in range(3000):  # without mmax9: about 6 ValueErrors in 3000
            augment(image)
