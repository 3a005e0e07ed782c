"""A VOC split's labels as an int8 array ``[N, 20]`` of 1 (present), 0 (absent), -1 (ignored), and
the per-class statistics drawn from them. Torch-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voc.annotations import labels_from_objects, parse_annotation
from voc.config import check_label_source, difficult_only_label
from voc.constants import IGNORED, NUM_CLASSES, POSITIVE
from voc.errors import VOCDataError
from voc.imagesets import find_voc_dir, read_class_labels, read_split_ids


def load_labels(
    root: str | Path,
    year: str | int,
    split: str,
    source: str = "annotations",
    difficult: str = "negative",
) -> tuple[list[str], np.ndarray]:
    """Image ids and int8 labels [N, 20] of a VOC split.

    ``source="annotations"`` reads ``<split>.txt`` and each id's ``Annotations/<id>.xml``;
    ``source="imagesets"`` reads only the per-class ``ImageSets/Main`` files. ``difficult`` is
    the policy for a class whose only objects are difficult (see ``voc.config.LabelConfig``).
    Raises VOCDataError for missing or bad files, ValueError for an unknown source or policy.
    """
    ids, labels, _ = _load(find_voc_dir(root, year), split, source, difficult, skip_missing=False)
    return ids, labels


def _load(
    voc_dir: Path, split: str, source: str, difficult: str, *, skip_missing: bool
) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """Ids, labels, and (id, reason) of ids dropped for a missing XML when ``skip_missing``."""
    check_label_source(source)
    difficult_only_label(difficult)  # validates the policy before any file is read
    if source == "imagesets":
        ids, labels = read_class_labels(voc_dir, split, difficult)
        return ids, labels, []

    kept: list[str] = []
    rows: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    for image_id in read_split_ids(voc_dir, split):
        xml = voc_dir / "Annotations" / f"{image_id}.xml"
        if not xml.is_file():
            if skip_missing:
                skipped.append((image_id, f"annotation not found: {xml}"))
                continue
            raise VOCDataError(f"annotation for id {image_id!r} (listed in {split}.txt) not found", xml)
        kept.append(image_id)
        rows.append(labels_from_objects(parse_annotation(xml).objects, difficult))
    labels = np.stack(rows) if rows else np.empty((0, NUM_CLASSES), dtype=np.int8)
    return kept, labels, skipped


def positive_counts(labels: np.ndarray) -> np.ndarray:
    """Number of images labelled positive, per class (int64 ``[C]``) of labels ``[N, C]``."""
    return (np.asarray(labels) == POSITIVE).sum(axis=0).astype(np.int64)


def label_frequencies(labels: np.ndarray) -> np.ndarray:
    """Share of images positive per class (float64 ``[C]``) of labels ``[N, C]``: positives over
    the images labelled for that class, ignored (-1) labels left out. A class with no labelled
    image gets 0."""
    labels = np.asarray(labels)
    labelled = (labels != IGNORED).sum(axis=0)
    return np.divide(positive_counts(labels), labelled, out=np.zeros(labels.shape[1]), where=labelled > 0)
