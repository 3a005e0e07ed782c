"""Read one VOC annotation XML and turn its objects into a 20-class label vector."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse as safe_parse

from voc.config import difficult_only_label
from voc.constants import CLASS_TO_INDEX, NEGATIVE, NUM_CLASSES, POSITIVE, VOC_CLASSES
from voc.errors import VOCDataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VOCObject:
    """One ``<object>`` of an annotation.

    ``bbox`` is (xmin, ymin, xmax, ymax) in pixels, or None where the object has no
    ``<bndbox>`` (classification does not need it).
    """

    name: str
    difficult: bool
    truncated: bool
    bbox: tuple[int, int, int, int] | None


@dataclass(frozen=True)
class VOCAnnotation:
    """The parts of a VOC annotation file that this project uses."""

    filename: str
    width: int
    height: int
    depth: int
    objects: tuple[VOCObject, ...]


def parse_annotation(path: str | Path) -> VOCAnnotation:
    """Parse a VOC annotation XML file.

    XML with a DTD, entity declarations or external references is refused before any
    expansion. Only an ``<object>``'s own ``<name>`` is a class; ``<part>`` names (head,
    hand, foot) are not. Missing ``<difficult>``/``<truncated>`` mean 0; a missing
    ``<size>`` field means 0.

    Raises VOCDataError, naming the file, for unreadable, unsafe or malformed XML, a
    non-numeric field, or an object whose class is not one of the 20 VOC classes.
    """
    path = Path(path)
    try:
        root = safe_parse(path, forbid_dtd=True).getroot()
    except DefusedXmlException as err:
        raise VOCDataError(
            f"refused: the XML declares entities, a DTD or external references ({err!r}); "
            "VOC annotations never do",
            path,
        ) from None
    except ParseError as err:
        raise VOCDataError(f"malformed XML: {err}", path) from None
    except FileNotFoundError:
        raise VOCDataError("annotation file not found", path) from None
    except OSError as err:
        raise VOCDataError(f"cannot read annotation file: {err.strerror or err}", path) from None

    if root.tag != "annotation":
        raise VOCDataError(f"the root element is <{root.tag}>, expected <annotation>", path)
    size = root.find("size")
    objects = tuple(_parse_object(obj, i, path) for i, obj in enumerate(root.findall("object")))
    return VOCAnnotation(
        filename=(root.findtext("filename") or "").strip(),
        width=_int_field(size, "width", 0, path),
        height=_int_field(size, "height", 0, path),
        depth=_int_field(size, "depth", 0, path),
        objects=objects,
    )


def labels_from_objects(objects: Iterable[VOCObject], difficult: str = "negative") -> np.ndarray:
    """A label vector (int8, [20]) from an image's objects.

    1 where the class has a non-difficult object; where all of a class's objects are
    difficult, the ``difficult`` policy decides (negative 0, ignore -1, positive 1);
    0 where the class is absent.
    """
    difficult_label = difficult_only_label(difficult)
    labels = np.full(NUM_CLASSES, NEGATIVE, dtype=np.int8)
    difficult_only = np.zeros(NUM_CLASSES, dtype=bool)
    for obj in objects:
        index = CLASS_TO_INDEX[obj.name]
        if obj.difficult:
            difficult_only[index] = True
        else:
            labels[index] = POSITIVE
    labels[difficult_only & (labels != POSITIVE)] = difficult_label
    return labels


def _parse_object(obj: Element, index: int, path: Path) -> VOCObject:
    name = (obj.findtext("name") or "").strip()
    if name not in CLASS_TO_INDEX:
        raise VOCDataError(
            f"object {index + 1} has unknown class name {name!r}; valid classes are {', '.join(VOC_CLASSES)}",
            path,
        )
    box = obj.find("bndbox")
    bbox: tuple[int, int, int, int] | None = None
    if box is not None:
        bbox = (
            _int_field(box, "xmin", None, path),
            _int_field(box, "ymin", None, path),
            _int_field(box, "xmax", None, path),
            _int_field(box, "ymax", None, path),
        )
    return VOCObject(
        name=name,
        difficult=bool(_int_field(obj, "difficult", 0, path)),
        truncated=bool(_int_field(obj, "truncated", 0, path)),
        bbox=bbox,
    )


def _int_field(parent: Element | None, tag: str, default: int | None, path: Path) -> int:
    """The integer in ``parent/<tag>``; ``default`` when absent (None: required)."""
    text = None if parent is None else parent.findtext(tag)
    if text is None or not text.strip():
        if default is None:
            raise VOCDataError(f"<{tag}> is missing", path)
        return default
    try:
        # Some third-party VOC-style files write coordinates as "273.0".
        return round(float(text))
    except (ValueError, OverflowError):
        raise VOCDataError(f"<{tag}> is not a number: {text.strip()!r}", path) from None
