"""``python -m voc``: synthetic data, labels as CSV, evaluation of a scores CSV, a paired comparison of two, and
download."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from voc.constants import DIFFICULT_POLICIES, LABEL_SOURCES, YEARS
from voc.errors import VOCDataError
from voc.tables import align, class_table_csv, read_class_csv


def _cmd_synth(args: argparse.Namespace) -> int:
    from voc.synthetic import DEFAULT_ROOTS, DEFAULT_SIZES, generate_synthetic_voc

    sizes = DEFAULT_SIZES[args.year]
    voc_dir = generate_synthetic_voc(
        DEFAULT_ROOTS[args.year] if args.out is None else args.out,
        sizes["n_train"] if args.train is None else args.train,
        sizes["n_val"] if args.val is None else args.val,
        sizes["n_test"] if args.test is None else args.test,
        year=args.year,
        seed=args.seed,
        workers=min(4, os.cpu_count() or 1),
    )
    print(voc_dir)
    return 0


def _cmd_labels(args: argparse.Namespace) -> int:
    from voc.labels import load_labels

    ids, labels = load_labels(args.root, args.year, args.split, source=args.source, difficult=args.difficult)
    sys.stdout.write(class_table_csv(ids, labels))
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


def _cmd_compare(args: argparse.Namespace) -> int:
    from voc.bootstrap import DEFAULT_SEED, bootstrap_map, prob_not_better, resample_counts
    from voc.metrics import AP_DEFINITIONS, evaluate

    if args.resamples < 1:
        raise VOCDataError(f"--resamples must be positive, got {args.resamples}")
    labels_frame = read_class_csv(args.labels, "labels")
    scores_a, labels = align(read_class_csv(args.scores, "scores"), labels_frame, args.scores, args.labels)
    scores_b, _ = align(read_class_csv(args.than, "scores"), labels_frame, args.than, args.labels)
    try:
        metrics_a, metrics_b = evaluate(scores_a, labels), evaluate(scores_b, labels)
    except ValueError as err:
        raise VOCDataError(f"cannot compare {args.scores} and {args.than} on {args.labels}: {err}") from None
    counts = resample_counts(labels.shape[0], args.resamples, DEFAULT_SEED)
    result: dict = {"resamples": args.resamples, "seed": DEFAULT_SEED}
    for name, definition in AP_DEFINITIONS.items():
        replicates_a = bootstrap_map(scores_a, labels, counts, name)
        replicates_b = bootstrap_map(scores_b, labels, counts, name)
        result[name] = {
            "definition": definition.description,
            "map": metrics_a[definition.metric],
            "map_than": metrics_b[definition.metric],
            "p_not_better": prob_not_better(replicates_a, replicates_b),
        }
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
    synth.add_argument("--out", type=Path, default=None,
                       help="folder to write VOCdevkit into (default: data/synthetic for 2012, data/synthetic-voc2007 "
                            "for 2007: where benchmark.py --year Y looks)")
    synth.add_argument("--train", type=int, default=None,
                       help="number of train images (default: 1600 for 2012; 2501 for 2007, as VOC2007)")
    synth.add_argument("--val", type=int, default=None,
                       help="number of val images (default: 400 for 2012; 2510 for 2007, as VOC2007)")
    synth.add_argument("--test", type=int, default=None,
                       help="number of test images (default: none for 2012; 4952 for 2007, as VOC2007)")
    synth.add_argument("--year", choices=YEARS, default="2012", help="VOC year layout (default: 2012)")
    synth.add_argument("--seed", type=int, default=0,
                       help="random seed; the same seed gives identical files (default: 0)")
    synth.set_defaults(func=_cmd_synth)

    labels = sub.add_parser("labels", help="print a split's labels as CSV: image_id + 20 classes, values 1/0/-1")
    labels.add_argument("--root", required=True, type=Path, help="folder holding VOCdevkit, VOCdevkit, or VOC<year>")
    labels.add_argument("--year", required=True, choices=YEARS)
    labels.add_argument("--split", required=True, help="image set, e.g. train, val, trainval, test")
    labels.add_argument("--source", choices=LABEL_SOURCES, default="annotations",
                        help="annotations: the XML files; imagesets: the per-class ImageSets/Main lists "
                             "(default: annotations)")
    labels.add_argument("--difficult", choices=DIFFICULT_POLICIES, default="negative",
                        help="label of a class whose only objects in an image are difficult (default: negative)")
    labels.set_defaults(func=_cmd_labels)

    ev = sub.add_parser("evaluate", help="score a predictions CSV against a labels CSV; prints one JSON object")
    ev.add_argument("--scores", required=True, type=Path, help="CSV: image_id + 20 class probabilities in [0, 1]")
    ev.add_argument("--labels", required=True, type=Path, help="CSV: image_id + 20 class labels 1/0/-1 (-1 = ignored)")
    ev.set_defaults(func=_cmd_evaluate)

    cmp = sub.add_parser("compare", help="paired bootstrap of two predictions CSVs on the same images: "
                                          "P(mAP of --scores <= mAP of --than), per AP definition; prints JSON")
    cmp.add_argument("--scores", required=True, type=Path, help="CSV: image_id + 20 class probabilities")
    cmp.add_argument("--than", required=True, type=Path, help="the other model's CSV, same images")
    cmp.add_argument("--labels", required=True, type=Path, help="CSV: image_id + 20 class labels 1/0/-1")
    cmp.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the images (seed 0)")
    cmp.set_defaults(func=_cmd_compare)

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
