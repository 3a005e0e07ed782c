"""``python -m voc``: synthetic data, labels as CSV, evaluation of a scores CSV, and download."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from voc.constants import DIFFICULT_POLICIES, LABEL_SOURCES, VOC_CLASSES, YEARS
from voc.errors import VOCDataError

_MAX_LISTED = 5


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


def align(scores: pd.DataFrame, labels: pd.DataFrame, scores_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels as arrays in the labels' row order; every id must be in both files."""
    only_scores = scores.index.difference(labels.index).tolist()
    only_labels = labels.index.difference(scores.index).tolist()
    if only_scores or only_labels:
        parts = []
        if only_labels:
            parts.append(f"{len(only_labels)} id(s) of {labels_path} missing from {scores_path}, e.g. {only_labels[:_MAX_LISTED]}")
        if only_scores:
            parts.append(f"{len(only_scores)} id(s) of {scores_path} not in {labels_path}, e.g. {only_scores[:_MAX_LISTED]}")
        raise VOCDataError("image ids do not match: " + "; ".join(parts))
    label_values = labels.to_numpy()
    if not np.isin(label_values, (-1, 0, 1)).all():
        raise VOCDataError("labels must be 1, 0 or -1", labels_path)
    return scores.loc[labels.index].to_numpy(), label_values.astype(np.int64)


def _cmd_synth(args: argparse.Namespace) -> int:
    from voc.synthetic import generate_synthetic_voc

    voc_dir = generate_synthetic_voc(args.out, args.train, args.val, args.test, year=args.year, seed=args.seed)
    print(voc_dir)
    return 0


def _cmd_labels(args: argparse.Namespace) -> int:
    from voc.dataset import load_labels

    ids, labels = load_labels(args.root, args.year, args.split, source=args.source, difficult=args.difficult)
    out = sys.stdout
    out.write(",".join(("image_id", *VOC_CLASSES)) + "\n")
    for image_id, row in zip(ids, labels):
        out.write(image_id + "," + ",".join(str(int(v)) for v in row) + "\n")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from voc.metrics import evaluate

    scores_frame = read_class_csv(args.scores, "scores")
    labels_frame = read_class_csv(args.labels, "labels")
    scores, labels = align(scores_frame, labels_frame, args.scores, args.labels)
    try:
        result = evaluate(scores, labels)
    except ValueError as err:
        raise VOCDataError(f"cannot evaluate {args.scores} against {args.labels}: {err}") from None
    print(json.dumps(result, indent=2, allow_nan=False))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from voc.download import download_voc

    print(download_voc(args.year, args.root))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voc", description="PASCAL VOC multi-label classification tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write a deterministic synthetic VOC tree: ROOT/VOCdevkit/VOC<year>/...")
    synth.add_argument("--out", required=True, type=Path, help="folder to write VOCdevkit into")
    synth.add_argument("--train", required=True, type=int, help="number of train images")
    synth.add_argument("--val", required=True, type=int, help="number of val images")
    synth.add_argument("--test", type=int, default=0, help="number of test images (default: 0, no test split)")
    synth.add_argument("--year", choices=YEARS, default="2012", help="VOC year layout (default: 2012)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files (default: 0)")
    synth.set_defaults(func=_cmd_synth)

    labels = sub.add_parser("labels", help="print a split's labels as CSV: image_id + 20 classes, values 1/0/-1")
    labels.add_argument("--root", required=True, type=Path, help="folder holding VOCdevkit, VOCdevkit, or VOC<year>")
    labels.add_argument("--year", required=True, choices=YEARS)
    labels.add_argument("--split", required=True, help="image set, e.g. train, val, trainval, test")
    labels.add_argument("--source", choices=LABEL_SOURCES, default="annotations",
                        help="annotations: the XML files; imagesets: the per-class ImageSets/Main lists (default: annotations)")
    labels.add_argument("--difficult", choices=DIFFICULT_POLICIES, default="negative",
                        help="label of a class whose only objects in an image are difficult (default: negative)")
    labels.set_defaults(func=_cmd_labels)

    ev = sub.add_parser("evaluate", help="score a predictions CSV against a labels CSV; prints one JSON object")
    ev.add_argument("--scores", required=True, type=Path, help="CSV: image_id + 20 class probabilities in [0, 1]")
    ev.add_argument("--labels", required=True, type=Path, help="CSV: image_id + 20 class labels 1/0/-1 (-1 = ignored)")
    ev.set_defaults(func=_cmd_evaluate)

    dl = sub.add_parser("download", help="download and extract the official VOC archives (md5-checked)")
    dl.add_argument("--year", required=True, choices=YEARS)
    dl.add_argument("--root", required=True, type=Path, help="folder to extract VOCdevkit into")
    dl.set_defaults(func=_cmd_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m voc``; returns the exit status (2 for bad input, no traceback)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VOCDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `python -m voc labels ... | head`
        return 0
