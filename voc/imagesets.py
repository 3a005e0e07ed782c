"""Find a VOC year folder and read its ``ImageSets/Main`` lists (split ids, per-class labels)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from voc.config import difficult_only_label
from voc.constants import NEGATIVE, NUM_CLASSES, POSITIVE, SPLITS, VOC_CLASSES
from voc.errors import VOCDataError

logger = logging.getLogger(__name__)

_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
_MAIN = Path("ImageSets", "Main")
_SHOW = 5  # how many differing ids an error message lists


def find_voc_dir(root: str | Path, year: str | int) -> Path:
    """The ``VOC<year>`` folder under ``root``.

    ``root`` may be the folder holding ``VOCdevkit``, the ``VOCdevkit`` folder, or the
    ``VOC<year>`` folder itself (also under another name, e.g. a copy of just its
    ``ImageSets``); the match must contain ``ImageSets``. Raises VOCDataError
    listing every path looked at and how to get the data.
    """
    root = Path(root).expanduser()
    if not _ID_PATTERN.fullmatch(str(year)):
        raise ValueError(f"Invalid year {year!r}: expected one of {list(SPLITS)}.")
    name = f"VOC{year}"
    candidates = [root / "VOCdevkit" / name, root / name]
    if root.name == name or not re.fullmatch(r"VOC\d{4}", root.name):
        candidates.append(root)  # a VOC<year> folder under its own or another name, not another year's
    for candidate in candidates:
        if (candidate / "ImageSets").is_dir():
            return candidate
    looked = "\n".join(f"  {c} ({_why_not(c)})" for c in candidates)
    others = _other_years(root, name)
    if others:
        found = ", ".join(f"{other} ({path})" for other, path in others)
        raise VOCDataError(
            f"no VOC{year} dataset found under {root}, but {found} is there. Looked for:\n{looked}\n"
            f"To use it, pass its year and splits, e.g. `--year {others[0][0].removeprefix('VOC')} "
            f"--train-split train --eval-split val`; or download VOC{year} with "
            f"`python -m voc download --year {year} --root {root}`."
        )
    raise VOCDataError(
        f"no VOC{year} dataset found under {root}"
        f"{'' if root.is_dir() else ' (that folder does not exist)'}. Looked for:\n{looked}\n"
        f"Download it with `python -m voc download --year {year} --root {root}`, "
        f"or make a synthetic set with `python -m voc synth --out {root} ...`."
    )


def _other_years(root: Path, name: str) -> list[tuple[str, Path]]:
    """The ``VOC<year>`` folders with an ``ImageSets`` folder under ``root`` or ``root/VOCdevkit``
    other than ``name``, sorted by name."""
    found = []
    for parent in (root / "VOCdevkit", root):
        if parent.is_dir():
            for candidate in sorted(parent.iterdir()):
                if (re.fullmatch(r"VOC\d{4}", candidate.name) and candidate.name != name
                        and (candidate / "ImageSets").is_dir()):
                    found.append((candidate.name, candidate))
    return found


def _why_not(candidate: Path) -> str:
    return "has no ImageSets folder" if candidate.is_dir() else "does not exist"


def read_split_ids(voc_dir: str | Path, split: str) -> list[str]:
    """The image ids listed in ``ImageSets/Main/<split>.txt``, in file order.

    Any split file that exists is accepted (custom splits too). LF or CRLF; blank lines
    are skipped. Raises VOCDataError for a missing or empty file, an id that is not a
    plain name (a path, or characters outside ``[A-Za-z0-9_-]``), or a duplicate id;
    ValueError for a split name that is not a plain name.
    """
    path = Path(voc_dir) / _MAIN / f"{_check_split_name(split)}.txt"
    if not path.is_file():
        raise VOCDataError(
            f"split file not found. Splits there: {_available_splits(path.parent) or 'none'}; "
            f"standard VOC splits are {_standard_splits()}",
            path,
        )
    ids: list[str] = []
    first_line: dict[str, int] = {}
    for line_no, line in _lines(path):
        image_id = _check_id(line, path, line_no)
        if image_id in first_line:
            raise VOCDataError(
                f"line {line_no}: id {image_id!r} is listed twice (first on line {first_line[image_id]})",
                path,
            )
        first_line[image_id] = line_no
        ids.append(image_id)
    if not ids:
        raise VOCDataError("the split file lists no ids", path)
    return ids


def read_class_labels(
    voc_dir: str | Path, split: str, difficult: str = "negative"
) -> tuple[list[str], np.ndarray]:
    """Ids and int8 labels [N, 20] from the 20 ``ImageSets/Main/<class>_<split>.txt`` files.

    Reads only ImageSets files. A line is ``<id> <value>``: 1 → 1, -1 → 0, and 0 (only
    difficult objects) → the ``difficult`` policy (negative 0, ignore -1, positive 1).
    Rows follow ``<split>.txt`` when it exists, else the first class file. Raises
    VOCDataError for a missing class file, a malformed line, or class files that do
    not list the same ids.
    """
    difficult_label = difficult_only_label(difficult)
    main = Path(voc_dir) / _MAIN
    _check_split_name(split)
    split_file = main / f"{split}.txt"
    ids = read_split_ids(voc_dir, split) if split_file.is_file() else None
    reference = split_file
    value_map = {"1": POSITIVE, "-1": NEGATIVE, "0": difficult_label}

    labels: np.ndarray | None = None
    row_of: dict[str, int] = {}
    for class_index, class_name in enumerate(VOC_CLASSES):
        path = main / f"{class_name}_{split}.txt"
        if not path.is_file():
            raise VOCDataError(
                f"per-class label file not found; reading labels from ImageSets needs all 20 "
                f"<class>_{split}.txt files (or use label source 'annotations')",
                path,
            )
        values = _read_class_file(path, value_map)
        if ids is None:
            ids, reference = list(values), path
        if labels is None:
            row_of = {image_id: row for row, image_id in enumerate(ids)}
            labels = np.empty((len(ids), NUM_CLASSES), dtype=np.int8)
        if values.keys() != row_of.keys():
            missing = [i for i in ids if i not in values]
            extra = [i for i in values if i not in row_of]
            raise VOCDataError(
                f"lists different ids from {reference.name}: "
                f"{len(missing)} missing (e.g. {missing[:_SHOW]}), {len(extra)} extra (e.g. {extra[:_SHOW]})",
                path,
            )
        for image_id, value in values.items():
            labels[row_of[image_id], class_index] = value
    assert ids is not None and labels is not None  # 20 classes were read
    return ids, labels


def _read_class_file(path: Path, value_map: dict[str, int]) -> dict[str, int]:
    """``{id: label}`` from one ``<class>_<split>.txt``, in file order."""
    values: dict[str, int] = {}
    for line_no, line in _lines(path):
        fields = line.split()
        if len(fields) != 2 or fields[1] not in value_map:
            raise VOCDataError(
                f"line {line_no}: expected '<id> <1|0|-1>', got {line.strip()!r}", path
            )
        image_id = _check_id(fields[0], path, line_no)
        if image_id in values:
            raise VOCDataError(f"line {line_no}: id {image_id!r} is listed twice", path)
        values[image_id] = value_map[fields[1]]
    if not values:
        raise VOCDataError("the per-class label file lists no ids", path)
    return values


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a text file with 1-based line numbers; LF or CRLF."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise VOCDataError(f"not a UTF-8 text file ({err.reason} at byte {err.start})", path) from None
    except OSError as err:
        raise VOCDataError(f"cannot read: {err.strerror or err}", path) from None
    return [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _check_id(text: str, path: Path, line_no: int) -> str:
    image_id = text.strip()
    if not _ID_PATTERN.fullmatch(image_id):
        raise VOCDataError(
            f"line {line_no}: {image_id!r} is not a plain image id "
            "(only letters, digits, '_' and '-'; no paths)",
            path,
        )
    return image_id


def _check_split_name(split: str) -> str:
    if not isinstance(split, str) or not _ID_PATTERN.fullmatch(split):
        raise ValueError(
            f"Invalid split name {split!r}: use a plain name such as {_standard_splits()}."
        )
    return split


def _available_splits(main: Path) -> str:
    """Split names with a ``<split>.txt`` in ``main``, leaving out per-class files."""
    if not main.is_dir():
        return ""
    stems = {p.stem for p in main.glob("*.txt")}
    per_class = {f"{c}_{s}" for c in VOC_CLASSES for s in stems}
    return ", ".join(sorted(stems - per_class))


def _standard_splits() -> str:
    return "; ".join(f"{year}: {', '.join(splits)}" for year, splits in SPLITS.items())
