"""Tests of voc.dataset.VOCClassification: items, label config, missing and undecodable files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from voc_tree import MIXED_IMAGES, corrupt, write_voc_tree

from voc.config import LabelConfig
from voc.constants import CLASS_TO_INDEX, VOC_CLASSES
from voc.dataset import VOCClassification
from voc.errors import VOCDataError
from voc.images import find_bad_images
from voc.labels import load_labels

IMAGES = MIXED_IMAGES
DOG, CAT, CHAIR = CLASS_TO_INDEX["dog"], CLASS_TO_INDEX["cat"], CLASS_TO_INDEX["chair"]


@pytest.fixture
def voc_dir(tmp_path: Path) -> Path:
    return write_voc_tree(tmp_path, IMAGES, year="2012", image_size=(24, 16))


# --------------------------------------------------------------------------- VOCClassification


def test_dataset_items(voc_dir: Path, tmp_path: Path) -> None:
    ds = VOCClassification(tmp_path, "2012", "train", labels=LabelConfig(difficult="ignore"))
    assert len(ds) == 4 and ds.ids == list(IMAGES) and ds.split == "train" and ds.year == "2012"
    assert ds.voc_dir == voc_dir and ds.skipped == [] and ds.class_names == VOC_CLASSES
    assert ds.image_path(2) == voc_dir / "JPEGImages/2008_000003.jpg"
    image, target = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (24, 16)
    assert target.dtype == torch.float32 and target.shape == (20,)
    assert target[DOG] == 1 and target[CAT] == -1 and target.sum() == 0
    assert ds[3][1][CHAIR] == -1


def test_dataset_transform_and_grayscale(voc_dir: Path, tmp_path: Path) -> None:
    Image.new("L", (8, 8), 50).save(voc_dir / "JPEGImages/2008_000002.jpg")
    ds = VOCClassification(tmp_path, 2012, "train", transform=lambda im: torch.zeros(3, *im.size))
    image, _ = ds[1]
    assert image.shape == (3, 8, 8)


def test_dataset_imagesets_source(voc_dir: Path, tmp_path: Path) -> None:
    for xml in (voc_dir / "Annotations").iterdir():
        xml.unlink()
    ds = VOCClassification(tmp_path, "2012", "train", labels=LabelConfig(source="imagesets"))
    np.testing.assert_array_equal(ds.labels, load_labels(tmp_path, "2012", "train", "imagesets")[1])


def test_positive_only_and_frequencies(voc_dir: Path, tmp_path: Path) -> None:
    ds = VOCClassification(voc_dir, "2012", "train", labels=LabelConfig(positive_only=True))
    assert ds.ids == ["2008_000001", "2008_000002"]
    counts = ds.positive_counts()
    assert counts.shape == (20,) and counts[DOG] == 1 and counts[CAT] == 1 and counts.sum() == 2
    np.testing.assert_allclose(ds.label_frequencies()[[DOG, CAT, CHAIR]], [0.5, 0.5, 0.0])

    ignore = VOCClassification(voc_dir, "2012", "train", labels=LabelConfig(difficult="ignore"))
    # cat: image 1 is ignored, image 2 positive, images 3-4 negative -> 1 of 3 labelled
    np.testing.assert_allclose(ignore.label_frequencies()[[DOG, CAT, CHAIR]], [1 / 4, 1 / 3, 0.0])


def test_missing_jpeg(voc_dir: Path, tmp_path: Path) -> None:
    jpeg = voc_dir / "JPEGImages/2008_000004.jpg"
    jpeg.unlink()
    expected = r"2008_000004\.jpg: image for id '2008_000004' \(listed in train\.txt\) not found"
    with pytest.raises(VOCDataError, match=expected) as info:
        VOCClassification(tmp_path, "2012", "train")
    assert info.value.path == jpeg


def test_missing_xml(voc_dir: Path, tmp_path: Path) -> None:
    (voc_dir / "Annotations/2008_000001.xml").unlink()
    with pytest.raises(VOCDataError, match=r"2008_000001\.xml: annotation for id"):
        VOCClassification(tmp_path, "2012", "train")


def test_skip_bad_images(voc_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (voc_dir / "JPEGImages/2008_000004.jpg").unlink()
    (voc_dir / "Annotations/2008_000001.xml").unlink()
    with caplog.at_level(logging.WARNING, logger="voc.dataset"):
        ds = VOCClassification(tmp_path, "2012", "train", skip_bad_images=True)
    assert ds.ids == ["2008_000002", "2008_000003"]
    assert ds.labels.shape == (2, 20) and ds.labels[0, CAT] == 1
    assert [i for i, _ in ds.skipped] == ["2008_000001", "2008_000004"]
    assert "annotation not found" in ds.skipped[0][1] and "image not found" in ds.skipped[1][1]
    assert "skipped 2 id(s) with missing files, e.g. 2008_000001, 2008_000004" in caplog.text


def test_dataset_bad_arguments(voc_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unknown label source"):
        VOCClassification(tmp_path, "2012", "train", labels=LabelConfig(source="csv"))
    with pytest.raises(VOCDataError, match=r"no VOC2007 dataset"):
        VOCClassification(tmp_path, "2007", "train")


@pytest.mark.parametrize("kind", ["zero-bytes", "truncated", "text"])
def test_undecodable_jpeg(voc_dir: Path, tmp_path: Path, kind: str) -> None:
    ds = VOCClassification(tmp_path, "2012", "train")  # construction only checks existence
    corrupt(ds.image_path(1), kind)
    with pytest.raises(VOCDataError, match=r"2008_000002\.jpg: image does not decode"):
        ds[1]
    ds[0]  # the others still load


def test_real_dataset(voc_fixtures: Path) -> None:
    ds = VOCClassification(voc_fixtures / "VOCdevkit", "2007", "trainval", labels=LabelConfig(difficult="ignore"))
    assert ds.ids == ["000001", "000002", "000003", "000004", "000005"]
    image, target = ds[0]  # 000001 is a progressive JPEG
    assert image.size == (353, 500) and image.mode == "RGB"
    assert {VOC_CLASSES[c] for c in torch.nonzero(target == 1).flatten().tolist()} == {"dog", "person"}
    assert find_bad_images(ds) == []


def test_bad_images_found_then_excluded(voc_dir: Path, tmp_path: Path) -> None:
    ds = VOCClassification(tmp_path, "2012", "train")
    assert ds.label_config == LabelConfig()
    assert find_bad_images(ds) == []
    corrupt(ds.image_path(0), "zero-bytes")
    corrupt(ds.image_path(3), "truncated")
    bad = find_bad_images(ds)
    assert [i for i, _ in bad] == ["2008_000001", "2008_000004"]
    kept = VOCClassification(tmp_path, "2012", "train", exclude=dict(bad))
    assert kept.ids == ["2008_000002", "2008_000003"]
    assert kept.skipped == bad
    kept[0], kept[1]  # what is left decodes
