"""Tests of voc.annotations: XML parsing, refusal of unsafe XML, labels from objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from voc_tree import write_annotation

from voc.annotations import VOCObject, labels_from_objects, parse_annotation
from voc.constants import CLASS_TO_INDEX, VOC_CLASSES
from voc.errors import VOCDataError

# --------------------------------------------------------------------------- helpers


def _write(tmp_path: Path, text: str, name: str = "a.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _obj(name: str, difficult: bool = False) -> VOCObject:
    return VOCObject(name=name, difficult=difficult, truncated=False, bbox=(0, 0, 1, 1))


def _expected(**values: int) -> np.ndarray:
    labels = np.zeros(len(VOC_CLASSES), dtype=np.int8)
    for name, value in values.items():
        labels[CLASS_TO_INDEX[name]] = value
    return labels


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<annotation><object><name>&lol3;</name></object></annotation>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><object><name>&xxe;</name></object></annotation>
"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE annotation SYSTEM "http://example.invalid/voc.dtd">
<annotation><object><name>dog</name></object></annotation>
"""

# --------------------------------------------------------------------------- parsing


def test_parse_round_trip(tmp_path: Path) -> None:
    objects = [("dog", False), ("person", True)]
    path = write_annotation(tmp_path / "x.xml", "x", objects, size=(40, 30))
    ann = parse_annotation(path)
    assert (ann.filename, ann.width, ann.height, ann.depth) == ("x.jpg", 40, 30, 3)
    assert ann.objects == (
        VOCObject("dog", difficult=False, truncated=False, bbox=(1, 1, 40, 30)),
        VOCObject("person", difficult=True, truncated=False, bbox=(1, 1, 40, 30)),
    )


def test_part_names_are_not_classes_and_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """<annotation><filename>p.jpg</filename>
        <object><name>
            person </name>
          <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30.0</xmax><ymax>40</ymax></bndbox>
          <part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></part>
          <part><name>hand</name></part>
        </object></annotation>""",
    )
    ann = parse_annotation(path)
    assert ann.objects == (VOCObject("person", difficult=False, truncated=False, bbox=(1, 2, 30, 40)),)
    assert (ann.width, ann.height, ann.depth) == (0, 0, 0)


def test_object_without_bndbox_has_no_bbox(tmp_path: Path) -> None:
    path = _write(tmp_path, _ann("<object><name>cat</name><difficult>1</difficult></object>"))
    assert parse_annotation(path).objects == (VOCObject("cat", difficult=True, truncated=False, bbox=None),)


def test_real_voc2012_parts(voc_fixtures: Path) -> None:
    ann = parse_annotation(voc_fixtures / "VOCdevkit/VOC2012/Annotations/2007_000027.xml")
    assert [o.name for o in ann.objects] == ["person"]
    assert ann.objects[0].bbox == (174, 101, 349, 351)
    np.testing.assert_array_equal(labels_from_objects(ann.objects), _expected(person=1))


def test_real_voc2007_fields(voc_fixtures: Path) -> None:
    ann = parse_annotation(voc_fixtures / "VOCdevkit/VOC2007/Annotations/000005.xml")
    assert (ann.filename, ann.width, ann.height, ann.depth) == ("000005.jpg", 500, 375, 3)
    assert [o.name for o in ann.objects] == ["chair"] * 5
    assert sum(o.difficult for o in ann.objects) == 2
    first = parse_annotation(voc_fixtures / "VOCdevkit/VOC2007/Annotations/000001.xml")
    assert sorted((o.name, o.truncated) for o in first.objects) == [("dog", True), ("person", True)]


# --------------------------------------------------------------------------- refusals and errors


def _ann(body: str) -> str:
    return f"<annotation>{body}</annotation>"


REFUSED = r"a\.xml: refused: the XML declares entities"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param(BILLION_LAUGHS, REFUSED, id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, REFUSED, id="external-entity"),
        pytest.param(EXTERNAL_DTD, REFUSED, id="external-dtd"),
        pytest.param(
            _ann("<object><name>dog</name>"), r"a\.xml: malformed XML: mismatched tag: line 1", id="mismatched-tag"
        ),
        pytest.param("", r"a\.xml: malformed XML: no element found", id="empty"),
        pytest.param(
            _ann("<object><name>unicorn</name></object>"),
            r"a\.xml: object 1 has unknown class name 'unicorn'; valid classes are aeroplane, bicycle",
            id="unknown-class",
        ),
        pytest.param(
            _ann("<object><name>dog</name></object><object><name>head</name></object>"),
            r"object 2 has unknown class name 'head'",
            id="part-name-as-class",
        ),
        pytest.param(_ann("<object></object>"), r"unknown class name ''", id="no-name"),
        pytest.param(
            _ann("<object><name>dog</name><difficult>yes</difficult></object>"),
            r"<difficult> is not a number: 'yes'",
            id="bad-difficult",
        ),
        pytest.param(
            _ann("<object><name>dog</name><bndbox><xmin>1</xmin></bndbox></object>"),
            r"<ymin> is missing",
            id="partial-bbox",
        ),
        pytest.param("<voc><object><name>dog</name></object></voc>", r"root element is <voc>", id="wrong-root"),
    ],
)
def test_bad_xml(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(VOCDataError, match=match) as info:
        parse_annotation(path)
    assert info.value.path == path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VOCDataError, match=r"nope\.xml: annotation file not found"):
        parse_annotation(tmp_path / "nope.xml")


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("policy", "difficult_only_value"), [("negative", 0), ("ignore", -1), ("positive", 1)]
)
def test_labels_from_objects(policy: str, difficult_only_value: int) -> None:
    objects = [
        _obj("dog"),
        _obj("chair"),
        _obj("chair", difficult=True),  # chair also has a non-difficult object: positive
        _obj("cat", difficult=True),
        _obj("cat", difficult=True),  # cat has only difficult objects: the policy decides
    ]
    labels = labels_from_objects(objects, difficult=policy)
    assert labels.dtype == np.int8 and labels.shape == (20,)
    np.testing.assert_array_equal(labels, _expected(dog=1, chair=1, cat=difficult_only_value))


def test_labels_from_no_objects() -> None:
    np.testing.assert_array_equal(labels_from_objects([], difficult="ignore"), _expected())


def test_unknown_policy() -> None:
    with pytest.raises(ValueError, match=r"Unknown difficult policy 'drop'.*\['negative', 'ignore', 'positive'\]"):
        labels_from_objects([_obj("dog")], difficult="drop")
