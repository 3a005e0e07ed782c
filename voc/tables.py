"""The class-table CSV: ``image_id`` and one column per VOC class, for scores or labels.

``predictions.csv`` (probabilities), ``labels.csv`` (1 / 0 / -1) and ``python -m voc labels``
all use it, and ``python -m voc evaluate`` reads two of them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from voc.constants import VOC_CLASSES
from voc.errors import VOCDataError

_MAX_LISTED = 5


def class_table_csv(ids: Sequence[str], values: np.ndarray, class_names: Sequence[str] = VOC_CLASSES) -> str:
    """``image_id`` + one column per class: integers as integers (labels), floats written exactly
    (``repr``) so that reading the file back gives the same numbers."""
    values = np.asarray(values)
    if values.ndim != 2 or len(ids) != len(values) or values.shape[1] != len(class_names):
        raise ValueError(f"{len(ids)} ids and {len(class_names)} classes, but values of shape {values.shape}")
    as_text = str if np.issubdtype(values.dtype, np.integer) else (lambda v: repr(float(v)))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image_id", *class_names])
    for image_id, row in zip(ids, values.tolist(), strict=False):
        writer.writerow([image_id, *(as_text(v) for v in row)])
    return buf.getvalue()


def read_class_csv(path: str | Path, what: str) -> pd.DataFrame:
    """A CSV with ``image_id`` and the 20 class columns (any order), indexed by image id, columns in
    canonical class order. Raises VOCDataError naming the file for a missing column, a duplicate
    id or a value that is not a number."""
    path = Path(path)
    if not path.is_file():
        raise VOCDataError(f"{what} file not found", path)
    try:
        frame = pd.read_csv(path, dtype={"image_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise VOCDataError(f"not a readable CSV ({err})", path) from None
    missing = [c for c in ("image_id", *VOC_CLASSES) if c not in frame.columns]
    if missing:
        raise VOCDataError(
            f"{what} CSV lacks column(s) {missing}; it needs image_id and the 20 classes {list(VOC_CLASSES)}", path
        )
    duplicated = frame["image_id"][frame["image_id"].duplicated()].tolist()
    if duplicated:
        raise VOCDataError(f"image id(s) listed twice: {duplicated[:_MAX_LISTED]}", path)
    frame = frame.set_index("image_id")[list(VOC_CLASSES)]
    try:
        frame = frame.astype(np.float64)
    except ValueError as err:
        raise VOCDataError(f"a class column holds a value that is not a number ({err})", path) from None
    if frame.isna().any().any():
        raise VOCDataError("empty cells in the class columns", path)
    return frame


def align(
    scores: pd.DataFrame, labels: pd.DataFrame, scores_path: Path, labels_path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels as arrays in the labels' row order; every id must be in both files."""
    only_scores = scores.index.difference(labels.index).tolist()
    only_labels = labels.index.difference(scores.index).tolist()
    if only_scores or only_labels:
        parts = []
        if only_labels:
            parts.append(
                f"{len(only_labels)} id(s) of {labels_path} missing from {scores_path}, "
                f"e.g. {only_labels[:_MAX_LISTED]}"
            )
        if only_scores:
            parts.append(
                f"{len(only_scores)} id(s) of {scores_path} not in {labels_path}, e.g. {only_scores[:_MAX_LISTED]}"
            )
        raise VOCDataError("image ids do not match: " + "; ".join(parts))
    label_values = labels.to_numpy()
    if not np.isin(label_values, (-1, 0, 1)).all():
        raise VOCDataError("labels must be 1, 0 or -1", labels_path)
    return scores.loc[labels.index].to_numpy(), label_values.astype(np.int64)
