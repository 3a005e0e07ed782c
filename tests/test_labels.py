"""Tests of voc.labels: load_labels from both sources and policies, its errors, and label statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from voc_tree import MIXED_IMAGES, write_lines, write_voc_tree

from voc.constants import CLASS_TO_INDEX, VOC_CLASSES
from voc.errors import VOCDataError
from voc.labels import label_frequencies, load_labels, positive_counts

DOG, CAT, CHAIR = CLASS_TO_INDEX["dog"], CLASS_TO_INDEX["cat"], CLASS_TO_INDEX["chair"]


@pytest.fixture
def voc_dir(tmp_path: Path) -> Path:
    return write_voc_tree(tmp_path, MIXED_IMAGES, year="2012", image_size=(24, 16))


# --------------------------------------------------------------------------- load_labels


@pytest.mark.parametrize("source", ["annotations", "imagesets"])
@pytest.mark.parametrize(("policy", "difficult_only"), [("negative", 0), ("ignore", -1), ("positive", 1)])
def test_load_labels(voc_dir: Path, tmp_path: Path, source: str, policy: str, difficult_only: int) -> None:
    ids, labels = load_labels(tmp_path, "2012", "train", source=source, difficult=policy)
    assert ids == list(MIXED_IMAGES)
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
    assert load_labels(tmp_path, "2012", "train", source="imagesets")[0] == list(MIXED_IMAGES)


def test_load_labels_bad_arguments(voc_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"Unknown label source 'xml'\. Valid values are \['annotations', 'imagesets'\]"
    ):
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


# --------------------------------------------------------------------------- statistics


def test_positive_counts_and_frequencies_by_hand() -> None:
    labels = np.array([[1, 0, -1], [1, -1, -1], [0, -1, -1], [-1, 1, -1]], dtype=np.int8)
    np.testing.assert_array_equal(positive_counts(labels), [2, 1, 0])
    assert positive_counts(labels).dtype == np.int64
    # class 0: 2 of 3 labelled; class 1: 1 of 2; class 2: never labelled -> 0
    freq = label_frequencies(labels)
    assert freq.dtype == np.float64
    np.testing.assert_allclose(freq, [2 / 3, 1 / 2, 0.0])


def test_frequencies_of_no_images() -> None:
    np.testing.assert_array_equal(label_frequencies(np.empty((0, 20), dtype=np.int8)), np.zeros(20))


def test_frequencies_of_a_split(voc_dir: Path, tmp_path: Path) -> None:
    _, labels = load_labels(tmp_path, "2012", "train", difficult="ignore")
    # cat: image 1 is ignored, image 2 positive, images 3-4 negative -> 1 of 3 labelled
    np.testing.assert_allclose(label_frequencies(labels)[[DOG, CAT, CHAIR]], [1 / 4, 1 / 3, 0.0])
