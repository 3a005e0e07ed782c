"""Where a DataLoader worker's time goes at the frozen protocols' view: ms per image of each step.

    python scripts/worker_steps.py [VOC_ROOT] [--images N] [--decode torchvision|pil] [--batch B]

Times, on one thread and over the first N images of ``JPEGImages``, the steps our eval transform
(``voc.transforms.MultiCropTransform`` at ``bench.protocols.linear.LinearProtocol``'s view, ResNet-50's
bicubic resampling) runs in a worker: decode, resize, float conversion with normalisation, and
collation into batches of B; and, for comparison, collating uint8 pixels and normalising each batch
afterwards, as a main process would if the worker handed over uint8. Prints a markdown table (the
benchmarks/README.md cites it).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import default_collate

from bench.protocols.linear import LinearProtocol
from voc.constants import IMAGENET_MEAN, IMAGENET_STD
from voc.transforms import build_transform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="data/synthetic-voc2007/VOCdevkit/VOC2007",
                        help="a VOC year folder with JPEGImages/ (default: the VOC2007-size synthetic set)")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--decode", choices=("torchvision", "pil"), default="torchvision")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    files = sorted((Path(args.root) / "JPEGImages").glob("*.jpg"))[: args.images]
    if not files:
        parser.error(f"{args.root}/JPEGImages has no .jpg files: give a VOC year folder, or make the default set "
                     "with `python -m voc synth --year 2007`")
    torch.set_num_threads(1)  # one worker's view
    config = LinearProtocol().transform_config(IMAGENET_MEAN, IMAGENET_STD, "bicubic")
    transform = build_transform(replace(config, decode=args.decode), train=False)

    def per_image(step, inputs):  # noqa: ANN001, ANN202
        started = time.perf_counter()
        outputs = [step(x) for x in inputs]
        return (time.perf_counter() - started) * 1e3 / len(inputs), outputs

    decode_ms, images = per_image(transform.read, files)
    if args.decode == "pil":  # the PIL path resizes the image, then turns it into a uint8 tensor
        resize_ms, pixels = per_image(transform._pil_pixels, images)
    else:
        resize_ms, pixels = per_image(transform._tensor_pixels, images)
    normalise_ms, crops = per_image(lambda p: transform._normalize(transform._crops(p)), pixels)
    batches = [crops[i: i + args.batch] for i in range(0, len(crops) - args.batch + 1, args.batch)]
    started = time.perf_counter()
    for batch in batches:
        default_collate(batch)
    collate_ms = (time.perf_counter() - started) * 1e3 / max(1, sum(len(b) for b in batches))
    # the alternative: the worker hands over uint8 pixels and the main process normalises each batch
    starts = range(0, len(batches) * args.batch, args.batch)
    uint8_batches = [[transform._crops(p) for p in pixels[i: i + args.batch]] for i in starts]
    started = time.perf_counter()
    for batch in uint8_batches:
        transform._normalize(default_collate(batch).flatten(0, 1))
    main_ms = (time.perf_counter() - started) * 1e3 / max(1, sum(len(b) for b in uint8_batches))
    rows = [
        (f"decode ({args.decode})", decode_ms),
        (f"resize to {config.resize} x {config.resize}" + (" (and to a tensor)" if args.decode == "pil" else ""),
         resize_ms),
        ("to float and normalise", normalise_ms),
        (f"collate batches of {args.batch}", collate_ms),
        ("sum", decode_ms + resize_ms + normalise_ms + collate_ms),
        (f"instead: collate uint8 batches of {args.batch}, then to float and normalise (main process)", main_ms),
    ]
    print(f"{len(files)} images of {args.root}, one thread\n")
    print("| step | ms/image |\n|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} |")


if __name__ == "__main__":
    main()
