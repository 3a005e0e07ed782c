"""The decode-once cache gives the pixels the JPEG path gives, and is reused or rebuilt by key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from voc.cache import ResizedImageCache
from voc.config import TransformConfig
from voc.datamodule import VOCDataModule
from voc.dataset import VOCClassification
from voc.errors import VOCDataError
from voc.transforms import build_transform


def test_cached_items_equal_decoded_items(tiny_voc: Path, tmp_path: Path) -> None:
    transform = build_transform(TransformConfig(resize=40, crop=32, crop_mode="five"), train=False)
    plain = VOCClassification(tiny_voc, "2012", "val", transform=transform)
    cached = VOCClassification(tiny_voc, "2012", "val", transform=transform)
    paths = [cached.image_path(i) for i in range(len(cached))]
    cached.image_cache = ResizedImageCache.open_or_build(tmp_path, paths, resize=40, crop_mode="five")
    assert len(cached.image_cache) == len(plain)
    for i in range(len(plain)):
        torch.testing.assert_close(cached[i][0], plain[i][0])
        torch.testing.assert_close(cached[i][1], plain[i][1])


def test_cache_is_reused_and_keyed_by_settings(tiny_voc: Path, tmp_path: Path) -> None:
    paths = sorted((tiny_voc / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))[:4]
    first = ResizedImageCache.open_or_build(tmp_path, paths, resize=30, crop_mode="five")
    again = ResizedImageCache.open_or_build(tmp_path, paths, resize=30, crop_mode="five")
    assert again.data_path == first.data_path
    assert len(list(tmp_path.glob("*.u8"))) == 1
    other = ResizedImageCache.open_or_build(tmp_path, paths, resize=20, crop_mode="full")
    assert other.data_path != first.data_path
    assert other[0].shape == (20, 20, 3)
    assert min(first[0].shape[:2]) == 30
    assert np.array_equal(first[1], again[1])


def test_datamodule_with_cache_yields_same_eval_batches(tiny_voc: Path, tmp_path: Path) -> None:
    kwargs = {
        "transform": TransformConfig(resize=32, crop=32, crop_mode="full"), "num_workers": 0, "eval_batch_size": 4
    }
    plain = VOCDataModule(tiny_voc, **kwargs)
    cached = VOCDataModule(tiny_voc, cache_dir=tmp_path / "cache", **kwargs)
    plain_batches, cached_batches = list(plain.val_dataloader()), list(cached.val_dataloader())
    assert len(plain_batches) == len(cached_batches) == 2  # 7 val images in batches of 4: something is compared
    for a, b in zip(plain_batches, cached_batches, strict=True):
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y)


def test_failed_build_leaves_no_cache(tiny_voc: Path, tmp_path: Path) -> None:
    paths = sorted((tiny_voc / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))[:3]
    broken = tmp_path / "images" / "broken.jpg"
    broken.parent.mkdir()
    broken.write_bytes(paths[0].read_bytes()[:100])
    cache_dir = tmp_path / "cache"
    with pytest.raises(VOCDataError, match=r"broken\.jpg: image does not decode"):
        ResizedImageCache.open_or_build(cache_dir, [*paths, broken], resize=30, crop_mode="five")
    assert list(cache_dir.iterdir()) == []  # neither data, index nor temp file
    cache = ResizedImageCache.open_or_build(cache_dir, paths, resize=30, crop_mode="five")
    assert sorted(p.suffix for p in cache_dir.iterdir()) == [".json", ".u8"] and len(cache) == 3
