"""Tests of voc.dataset: load_labels, VOCClassification, find_bad_images."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile
from voc_tree import write_lines, write_voc_tree

from voc.constants import CLASS_TO_INDEX, VOC_CLASSES
from voc.dataset import VOCClassification, find_bad_images, load_labels
from voc.errors import VOCDataError

IMAGES = {
    "2008_000001": [("dog", False), ("cat", True)],
    "2008_000002": [("cat", False), ("cat", True)],
    "2008_000003": [],
    "2008_000004": [("chair", True)],
}
DOG, CAT, CHAIR = CLASS_TO_INDEX["dog"], CLASS_TO_INDEX["cat"], CLASS_TO_INDEX["chair"]


@pytest.fixture
def voc_dir(tmp_path: Path) -> Path:
    return write_voc_tree(tmp_path, IMAGES, year="2012", image_size=(24, 16))


def _corrupt(path: Path, kind: str) -> None:
    if kind == "zero-bytes":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("this is not a JPEG\n")


# --------------------------------------------------------------------------- load_labels


@pytest.mark.parametrize("source", ["annotations", "imagesets"])
@pytest.mark.parametrize(("policy", "difficult_only"), [("negative", 0), ("ignore", -1), ("positive", 1)])
def test_load_labels(voc_dir: Path, tmp_path: Path, source: str, policy: str, difficult_only: int) -> None:
    ids, labels = load_labels(tmp_path, "2012", "train", source=source, difficult=policy)
    assert ids == list(IMAGES)
    assert labels.dtype == np.int8 and labels.shape == (4, 20)
    expected = np.zeros((4, 20), dtype=np.int8)
    expected[0, DOG] = 1
    expected[0, CAT] = difficult_only
    expected[1, CAT] = 1
    expected[3, CHAIR] = difficult_only
    np.testing.assert_array_equal(labels, expected)


def test_load_labels_missing_xml(voc_dir: Path, tmp_path: Path) -> None:
    xml = voc_dir / "Annotations/2008_000002.xml"
    xml.unlink()
    expected = r"2008_000002\.xml: annotation for id '2008_000002' \(listed in train\.txt\) not found"
    with pytest.raises(VOCDataError, match=expected) as info:
        load_labels(tmp_path, "2012", "train")
    assert info.value.path == xml
    # the imagesets source never looks at Annotations
    assert load_labels(tmp_path, "2012", "train", source="imagesets")[0] == list(IMAGES)


def test_load_labels_bad_arguments(voc_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unknown label source 'xml'\. Valid values are \['annotations', 'imagesets'\]"):
        load_labels(tmp_path, "2012", "train", source="xml")
    with pytest.raises(ValueError, match=r"Unknown difficult policy"):
        load_labels(tmp_path, "2012", "train", difficult="drop")


def test_load_labels_missing_root(tmp_path: Path) -> None:
    with pytest.raises(VOCDataError, match=r"(?s)no VOC2012 dataset found under .*python -m voc download"):
        load_labels(tmp_path / "missing", "2012", "train")


def test_load_labels_missing_split(voc_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(VOCDataError, match=r"val\.txt: split file not found"):
        load_labels(tmp_path, "2012", "val")


@pytest.mark.parametrize("bad_id", ["../x", "/x"])
def test_load_labels_id_that_is_a_path(voc_dir: Path, tmp_path: Path, bad_id: str) -> None:
    write_lines(voc_dir / "ImageSets/Main/train.txt", ["2008_000001", bad_id])
    with pytest.raises(VOCDataError, match=r"train\.txt: line 2: .* is not a plain image id"):
        load_labels(tmp_path, "2012", "train")


def test_load_labels_bad_xml(voc_dir: Path, tmp_path: Path) -> None:
    (voc_dir / "Annotations/2008_000003.xml").write_text("<annotation><object>")
    with pytest.raises(VOCDataError, match=r"2008_000003\.xml: malformed XML"):
        load_labels(tmp_path, "2012", "train")


def test_load_labels_real(voc_fixtures: Path) -> None:
    ids, labels = load_labels(voc_fixtures, "2012", "trainval")
    assert ids == ["2007_000027", "2007_000032", "2007_000033", "2007_000039", "2007_000042"]
    names = [{VOC_CLASSES[c] for c in np.flatnonzero(row == 1)} for row in labels]
    assert names == [{"person"}, {"aeroplane", "person"}, {"aeroplane"}, {"tvmonitor"}, {"train"}]


# --------------------------------------------------------------------------- VOCClassification


def test_dataset_items(voc_dir: Path, tmp_path: Path) -> None:
    ds = VOCClassification(tmp_path, "2012", "train", difficult="ignore")
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
    ds = VOCClassification(tmp_path, "2012", "train", label_source="imagesets")
    np.testing.assert_array_equal(ds.labels, load_labels(tmp_path, "2012", "train", "imagesets")[1])


def test_positive_only_and_frequencies(voc_dir: Path, tmp_path: Path) -> None:
    ds = VOCClassification(voc_dir, "2012", "train", positive_only=True)
    assert ds.ids == ["2008_000001", "2008_000002"]
    counts = ds.positive_counts()
    assert counts.shape == (20,) and counts[DOG] == 1 and counts[CAT] == 1 and counts.sum() == 2
    np.testing.assert_allclose(ds.label_frequencies()[[DOG, CAT, CHAIR]], [0.5, 0.5, 0.0])

    ignore = VOCClassification(voc_dir, "2012", "train", difficult="ignore")
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
        VOCClassification(tmp_path, "2012", "train", label_source="csv")
    with pytest.raises(VOCDataError, match=r"no VOC2007 dataset"):
        VOCClassification(tmp_path, "2007", "train")


@pytest.mark.parametrize("kind", ["zero-bytes", "truncated", "text"])
def test_undecodable_jpeg(voc_dir: Path, tmp_path: Path, kind: str) -> None:
    ds = VOCClassification(tmp_path, "2012", "train")  # construction only checks existence
    _corrupt(ds.image_path(1), kind)
    with pytest.raises(VOCDataError, match=r"2008_000002\.jpg: image does not decode"):
        ds[1]
    ds[0]  # the others still load


def test_truncated_jpeg_raises_whatever_the_global_setting(
    voc_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    ds = VOCClassification(tmp_path, "2012", "train")
    _corrupt(ds.image_path(0), "truncated")
    with pytest.raises(VOCDataError, match=r"image does not decode"):
        ds[0]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_real_dataset(voc_fixtures: Path) -> None:
    ds = VOCClassification(voc_fixtures / "VOCdevkit", "2007", "trainval", difficult="ignore")
    assert ds.ids == ["000001", "000002", "000003", "000004", "000005"]
    image, target = ds[0]  # 000001 is a progressive JPEG
    assert image.size == (353, 500) and image.mode == "RGB"
    assert {VOC_CLASSES[c] for c in torch.nonzero(target == 1).flatten().tolist()} == {"dog", "person"}
    assert find_bad_images(ds) == []


# --------------------------------------------------------------------------- find_bad_images


def test_find_bad_images(voc_dir: Path, tmp_path: Path) -> None:
    ds = VOCClassification(tmp_path, "2012", "train")
    assert find_bad_images(ds) == []
    _corrupt(ds.image_path(0), "zero-bytes")
    _corrupt(ds.image_path(1), "truncated")
    _corrupt(ds.image_path(3), "text")
    bad = find_bad_images(ds)
    assert [i for i, _ in bad] == ["2008_000001", "2008_000002", "2008_000004"]
    assert all("image does not decode" in reason for _, reason in bad)
    assert "2008_000002.jpg" in bad[1][1] and "truncated" in bad[1][1].lower()


def test_find_bad_images_paths(tmp_path: Path, voc_fixtures: Path) -> None:
    good = sorted((voc_fixtures / "photos").glob("*.jpg"))
    missing = tmp_path / "gone.jpg"
    cut = tmp_path / "cut.jpg"
    data = good[0].read_bytes()
    cut.write_bytes(data[: len(data) - 100])
    bad = find_bad_images([*good, str(missing), cut])
    assert [i for i, _ in bad] == ["gone", "cut"]
    assert "not found" in bad[0][1] and "truncated" in bad[1][1].lower()
