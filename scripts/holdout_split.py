"""A held-out part of a training split, to choose a recipe's values without the eval split.

    python scripts/holdout_split.py --data ../shared/voc07-real-dev --out /tmp/voc-holdout \\
        [--year 2007] [--split train] [--share 0.6667] [--seed 0]

Writes a VOC tree at ``--out`` whose ``JPEGImages`` and ``Annotations`` are links to those of
``--data`` and whose ``ImageSets/Main`` holds ``<split>A.txt`` (the first ``--share`` of the
split's ids after a seeded shuffle) and ``<split>B.txt`` (the rest), each sorted. Train on A and
evaluate on B: ``python benchmark.py ... --data OUT --train-split trainA --eval-split trainB``.
Nothing of the eval split is read.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="a VOC tree (the folder holding VOCdevkit/)")
    parser.add_argument("--out", required=True, type=Path, help="where to write the linked tree")
    parser.add_argument("--year", default="2007")
    parser.add_argument("--split", default="train")
    parser.add_argument("--share", type=float, default=2 / 3, help="share of the split's ids in part A")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from voc.imagesets import find_voc_dir, read_split_ids

    if not 0.0 < args.share < 1.0:
        parser.error(f"--share must be in (0, 1), got {args.share}")
    source = find_voc_dir(args.data, args.year)
    ids = read_split_ids(source, args.split)
    random.Random(args.seed).shuffle(ids)
    cut = round(len(ids) * args.share)
    target = args.out / "VOCdevkit" / f"VOC{args.year}"
    (target / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for name in ("JPEGImages", "Annotations"):
        link = target / name
        if not link.exists():
            link.symlink_to((source / name).resolve(), target_is_directory=True)
    for part, chosen in (("A", ids[:cut]), ("B", ids[cut:])):
        (target / "ImageSets" / "Main" / f"{args.split}{part}.txt").write_text(
            "".join(f"{i}\n" for i in sorted(chosen)), encoding="utf-8")
        print(f"{target / 'ImageSets' / 'Main' / f'{args.split}{part}.txt'}: {len(chosen)} ids")
    return 0


if __name__ == "__main__":
    sys.exit(main())
