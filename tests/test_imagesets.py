"""Tests of voc.imagesets: root resolution, split lists, per-class label files (fake and real)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from voc_tree import write_lines, write_voc_tree

from voc.annotations import labels_from_objects, parse_annotation
from voc.constants import CLASS_TO_INDEX, VOC_CLASSES
from voc.errors import VOCDataError
from voc.imagesets import find_voc_dir, read_class_labels, read_split_ids

IMAGES = {
    "2008_000001": [("dog", False), ("cat", True)],
    "2008_000002": [("cat", False), ("cat", True)],
    "2008_000003": [],
}

# --------------------------------------------------------------------------- find_voc_dir


@pytest.mark.parametrize("form", ["parent", "devkit", "year-dir"])
def test_find_voc_dir_forms(tmp_path: Path, form: str) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES, year="2012")
    root = {"parent": tmp_path, "devkit": tmp_path / "VOCdevkit", "year-dir": voc_dir}[form]
    assert find_voc_dir(root, "2012") == voc_dir
    assert find_voc_dir(str(root), 2012) == voc_dir


@pytest.mark.parametrize("form", ["parent", "devkit", "year-dir"])
def test_find_voc_dir_real(voc_fixtures: Path, form: str) -> None:
    devkit = voc_fixtures / "VOCdevkit"
    for year in ("2007", "2012"):
        root = {"parent": voc_fixtures, "devkit": devkit, "year-dir": devkit / f"VOC{year}"}[form]
        assert find_voc_dir(root, year) == devkit / f"VOC{year}"


def test_find_voc_dir_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(VOCDataError, match=r"no VOC2012 dataset found") as info:
        find_voc_dir(root, "2012")
    message = str(info.value)
    assert "that folder does not exist" in message
    assert str(root / "VOCdevkit" / "VOC2012") in message and str(root / "VOC2012") in message
    assert f"python -m voc download --year 2012 --root {root}" in message
    assert "python -m voc synth --out" in message


def test_find_voc_dir_wrong_year(tmp_path: Path) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES, year="2012")
    with pytest.raises(VOCDataError, match=r"no VOC2007 dataset") as info:
        find_voc_dir(tmp_path, "2007")
    # the set that is there, and the flags that would use it (a synthetic set is VOC2012)
    assert f"but VOC2012 ({voc_dir}) is there" in str(info.value)
    assert "`--year 2012 --train-split train --eval-split val`" in str(info.value)
    with pytest.raises(VOCDataError, match=r"no VOC2007 dataset"):
        find_voc_dir(voc_dir, "2007")  # the VOC2012 folder is not VOC2007


def test_find_voc_dir_needs_imagesets(tmp_path: Path) -> None:
    (tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(VOCDataError, match=r"VOC2012 \(has no ImageSets folder\)"):
        find_voc_dir(tmp_path, "2012")


def test_find_voc_dir_bad_year(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Invalid year '../2012'"):
        find_voc_dir(tmp_path, "../2012")


# --------------------------------------------------------------------------- read_split_ids


@pytest.mark.parametrize("crlf", [False, True])
def test_read_split_ids(tmp_path: Path, crlf: bool) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES, crlf=crlf)
    assert read_split_ids(voc_dir, "train") == list(IMAGES)


def test_read_split_ids_blank_lines_and_spaces(tmp_path: Path) -> None:
    voc_dir = tmp_path / "VOC2012"
    write_lines(voc_dir / "ImageSets/Main/mine.txt", ["", "  a_1 ", "\t", "b-2", ""], "\r\n")
    assert read_split_ids(voc_dir, "mine") == ["a_1", "b-2"]  # a custom split is fine


def test_missing_split_file(tmp_path: Path) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES, splits={"train": ["2008_000001"], "val": ["2008_000002"]})
    expected = r"test\.txt: split file not found\. Splits there: train, val; standard VOC splits are 2007: train, val"
    with pytest.raises(VOCDataError, match=expected) as info:
        read_split_ids(voc_dir, "test")
    assert info.value.path == voc_dir / "ImageSets/Main/test.txt"


def test_empty_split(tmp_path: Path) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES, splits={"train": []})
    with pytest.raises(VOCDataError, match=r"train\.txt: the split file lists no ids"):
        read_split_ids(voc_dir, "train")
    write_lines(voc_dir / "ImageSets/Main/train.txt", ["", "  "], "\r\n")
    with pytest.raises(VOCDataError, match=r"lists no ids"):
        read_split_ids(voc_dir, "train")


@pytest.mark.parametrize("bad_id", ["../x", "/x", "a/b", "a\\b", ".hidden", "C:x", "a b", "ü1", "x.jpg"])
def test_id_that_is_a_path(tmp_path: Path, bad_id: str) -> None:
    voc_dir = tmp_path / "VOC2012"
    write_lines(voc_dir / "ImageSets/Main/train.txt", ["ok_1", "", bad_id])
    with pytest.raises(VOCDataError, match=r"train\.txt: line 3: .* is not a plain image id"):
        read_split_ids(voc_dir, "train")


def test_duplicate_ids(tmp_path: Path) -> None:
    voc_dir = tmp_path / "VOC2012"
    write_lines(voc_dir / "ImageSets/Main/train.txt", ["a", "b", "a"])
    with pytest.raises(VOCDataError, match=r"line 3: id 'a' is listed twice \(first on line 1\)"):
        read_split_ids(voc_dir, "train")


def test_split_name_that_is_a_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Invalid split name '../train'"):
        read_split_ids(tmp_path, "../train")


# --------------------------------------------------------------------------- read_class_labels


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize(("policy", "cat_difficult_only"), [("negative", 0), ("ignore", -1), ("positive", 1)])
def test_read_class_labels_matches_annotations(
    tmp_path: Path, crlf: bool, policy: str, cat_difficult_only: int
) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES, crlf=crlf)
    ids, labels = read_class_labels(voc_dir, "train", difficult=policy)
    assert ids == list(IMAGES)
    assert labels.dtype == np.int8 and labels.shape == (3, 20)
    from_xml = np.stack(
        [labels_from_objects(parse_annotation(voc_dir / f"Annotations/{i}.xml").objects, policy) for i in ids]
    )
    np.testing.assert_array_equal(labels, from_xml)
    assert labels[0, CLASS_TO_INDEX["cat"]] == cat_difficult_only
    assert labels[1, CLASS_TO_INDEX["cat"]] == 1


def test_read_class_labels_reads_only_imagesets(tmp_path: Path) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES, jpegs=False, annotations=False)
    ids, labels = read_class_labels(voc_dir, "train")
    assert ids == list(IMAGES) and labels[0, CLASS_TO_INDEX["dog"]] == 1


def test_read_class_labels_order(tmp_path: Path) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES)
    main = voc_dir / "ImageSets/Main"
    # the split file's order wins over the class files' order
    write_lines(main / "train.txt", ["2008_000003", "2008_000001", "2008_000002"])
    ids, labels = read_class_labels(voc_dir, "train")
    assert ids == ["2008_000003", "2008_000001", "2008_000002"]
    assert labels[1, CLASS_TO_INDEX["dog"]] == 1 and labels[0].max() == 0
    # without a split file, the first class file's order
    (main / "train.txt").unlink()
    ids, _ = read_class_labels(voc_dir, "train")
    assert ids == list(IMAGES)


def test_missing_class_file(tmp_path: Path) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES)
    (voc_dir / "ImageSets/Main/sheep_train.txt").unlink()
    with pytest.raises(VOCDataError, match=r"sheep_train\.txt: per-class label file not found"):
        read_class_labels(voc_dir, "train")


def test_class_file_with_other_ids(tmp_path: Path) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES)
    write_lines(voc_dir / "ImageSets/Main/dog_train.txt", ["2008_000001  1", "2008_000009 -1", "2008_000003 -1"])
    expected = (
        r"dog_train\.txt: lists different ids from train\.txt: "
        r"1 missing \(e\.g\. \['2008_000002'\]\), 1 extra \(e\.g\. \['2008_000009'\]\)"
    )
    with pytest.raises(VOCDataError, match=expected):
        read_class_labels(voc_dir, "train")


@pytest.mark.parametrize(
    "line", ["2008_000002", "2008_000002 2", "2008_000002 1 1", "2008_000002 +1", "../x 1"]
)
def test_malformed_class_line(tmp_path: Path, line: str) -> None:
    voc_dir = write_voc_tree(tmp_path, IMAGES)
    write_lines(voc_dir / "ImageSets/Main/bus_train.txt", ["2008_000001 -1", line, "2008_000003 -1"], "\r\n")
    with pytest.raises(VOCDataError, match=r"bus_train\.txt: line 2: "):
        read_class_labels(voc_dir, "train")


def test_unknown_policy_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unknown difficult policy 'maybe'"):
        read_class_labels(tmp_path, "train", difficult="maybe")


# --------------------------------------------------------------------------- real VOC2007 lists


@pytest.mark.parametrize("policy", ["negative", "ignore", "positive"])
def test_real_xml_labels_equal_real_imagesets(voc_fixtures: Path, policy: str) -> None:
    """VOC2007 000001-000004 are in the real test split, 000005 in trainval."""
    subset = voc_fixtures / "VOC2007-imagesets-subset"
    annotations = voc_fixtures / "VOCdevkit/VOC2007/Annotations"
    for split, expected_ids in [("test", ["000001", "000002", "000003", "000004"]), ("trainval", ["000005"])]:
        ids, labels = read_class_labels(subset, split, difficult=policy)
        assert ids == expected_ids
        objects = [parse_annotation(annotations / f"{i}.xml").objects for i in ids]
        from_xml = np.stack([labels_from_objects(o, policy) for o in objects])
        np.testing.assert_array_equal(labels, from_xml, err_msg=f"{split} {policy}")
    # 000005 has difficult chairs next to non-difficult ones: positive under every policy
    assert labels[0, CLASS_TO_INDEX["chair"]] == 1


def _independent_counts(main: Path, split: str) -> dict[str, dict[str, int]]:
    """Per class, how many lines say 1, 0, -1: plain string parsing, no project code."""
    counts = {}
    for name in VOC_CLASSES:
        text = (main / f"{name}_{split}.txt").read_text()
        values = [line.split()[1] for line in text.split("\n") if line.strip()]
        counts[name] = {v: values.count(v) for v in ("1", "0", "-1")}
    return counts


@pytest.mark.parametrize(("split", "n_images"), [("trainval", 5011), ("test", 4952)])
def test_real_full_lists(voc_fixtures: Path, split: str, n_images: int) -> None:
    full = voc_fixtures / "VOC2007-imagesets-full"
    main = full / "ImageSets/Main"
    assert b"\r\n" in (main / f"{split}.txt").read_bytes()  # the real lists are CRLF
    ids = read_split_ids(full, split)
    assert len(ids) == n_images == len(set(ids)) and all(len(i) == 6 for i in ids)

    counts = _independent_counts(main, split)
    class_ids, negative = read_class_labels(full, split, difficult="negative")
    assert class_ids == ids
    _, ignore = read_class_labels(full, split, difficult="ignore")
    _, positive = read_class_labels(full, split, difficult="positive")
    for c, name in enumerate(VOC_CLASSES):
        n = counts[name]
        assert n["1"] + n["0"] + n["-1"] == n_images
        assert (negative[:, c] == 1).sum() == n["1"], name
        assert (negative[:, c] == 0).sum() == n["0"] + n["-1"], name
        assert (ignore[:, c] == -1).sum() == n["0"], name
        assert (positive[:, c] == 1).sum() == n["1"] + n["0"], name
    # spot checks against the published VOC2007 statistics
    person = CLASS_TO_INDEX["person"]
    assert (negative[:, person] == 1).sum() == {"trainval": 2008, "test": 2007}[split]
