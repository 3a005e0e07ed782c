"""Which view stage 1 of ``lpft`` sees best, measured on the training split only.

    python scripts/probe_view_cv.py --data ../shared/voc07-real-dev --split train \\
        --models tf_efficientnet_lite0 --sizes 224 320 384 448 [--cache DIR]

For each model and size, fits ``lpft``'s stage-1 head (``bench.train.head.fit_head``: logistic
regression per class, C by 3-fold CV) on the backbone's frozen features of ``--split`` at the whole
image resized to ``size x size``, and prints a markdown table of the heads' mean 3-fold CV AP (the
``cv_mAP`` a run records in ``head_init``). No other split is read: this is how a view can be
chosen without looking at the eval split. Features go to the feature cache (``--cache``, default a
temporary folder), keyed as a run's are.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a VOC tree (the folder holding VOCdevkit/)")
    parser.add_argument("--year", default="2007")
    parser.add_argument("--split", default="train", help="the training split; the only one read")
    parser.add_argument("--models", nargs="+", default=["tf_efficientnet_lite0"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 320, 384, 448])
    parser.add_argument("--pretrained", default="imagenet")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache folder (default: a temporary one)")
    args = parser.parse_args(argv)

    import torch
    from tabulate import tabulate

    from bench.data import DataSource
    from bench.model import build_classifier
    from bench.protocols.finetune import LPFT_PROTOCOL
    from bench.train.head import probe_head
    from bench.weights import resolve_weights
    from voc.feature_cache import FeatureCache

    data = DataSource(root=Path(args.data))
    with tempfile.TemporaryDirectory() as scratch:
        cache = FeatureCache(args.cache if args.cache is not None else Path(scratch))
        rows = []
        for model_name in args.models:
            weights = resolve_weights(model_name, args.pretrained)
            for size in args.sizes:
                protocol = replace(LPFT_PROTOCOL, year=args.year, train_split=args.split, eval_split=args.split,
                                   resize=size, crop=size, precision="32-true")
                torch.manual_seed(protocol.seed)
                classifier, data_config = build_classifier(model_name, weights, input_size=size)
                head = probe_head(model_name, classifier, data_config, protocol=protocol, data=data, weights=weights,
                                  cache=cache, device=torch.device("cpu"), precision="32-true")
                rows.append([model_name, size, f"{head.section['cv_mAP']:.4f}",
                             f"{head.section['time_s']['features']:.0f}"])
    print(tabulate(rows, headers=["model", "view (px)", f"3-fold CV mAP on {args.split}", "features (s)"],
                   tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
