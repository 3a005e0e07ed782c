"""The up-front data check: every split's lists, labels and images, read once before any training."""

from __future__ import annotations

import logging

from bench.data import DataSource
from bench.protocols.settings import Protocol
from voc.dataset import VOCClassification
from voc.errors import VOCDataError
from voc.images import find_bad_images

log = logging.getLogger(__name__)

MAX_LISTED = 5
"""How many bad files an error message names."""


def protocol_dataset(
    protocol: Protocol, data: DataSource, split: str, *, skip_bad_images: bool = False
) -> VOCClassification:
    """``split`` under the protocol's label settings, without the images ``data`` leaves out."""
    return VOCClassification(
        data.root,
        protocol.year,
        split,
        labels=protocol.label_config(),
        skip_bad_images=skip_bad_images or bool(data.skipped),
        exclude=data.skipped.get(split),
    )


def check_data(
    protocol: Protocol, data: DataSource, *, decode: bool = True, skip_bad_images: bool = False
) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """Read both splits' lists and labels, and (``decode``) decode every image at a reduced scale,
    once before any training; VOCDataError names the bad file(s).

    With ``skip_bad_images``, images that are missing or do not decode are left out instead and
    returned as split → {id: reason}, also logged. Returns (images per split after the
    protocol's filters, skipped images).
    """
    sizes: dict[str, int] = {}
    skipped: dict[str, dict[str, str]] = {}
    for split in (protocol.train_split, protocol.eval_split):
        dataset = protocol_dataset(protocol, data, split, skip_bad_images=skip_bad_images)
        bad = dict(dataset.skipped)
        if decode:
            undecodable = find_bad_images(dataset)
            if undecodable and not skip_bad_images:
                listed = "; ".join(reason for _, reason in undecodable[:MAX_LISTED])
                more = f" (and {len(undecodable) - MAX_LISTED} more)" if len(undecodable) > MAX_LISTED else ""
                raise VOCDataError(
                    f"{len(undecodable)} image(s) of split {split!r} do not decode: {listed}{more}. "
                    "Replace them, or pass --skip-bad-images to leave them out"
                )
            bad.update(undecodable)
        if bad:
            skipped[split] = bad
            log.warning(
                "--skip-bad-images: leaving out %d image(s) of split %r: %s",
                len(bad), split, "; ".join(f"{i} ({r})" for i, r in list(bad.items())[:MAX_LISTED]),
            )
        size = len(dataset) - len(bad) + len(dataset.skipped)  # missing files are already out of the dataset
        if size <= 0:
            raise VOCDataError(
                f"split {split!r} has no usable image"
                + (" with a positive label (images without one are left out: positive_only)"
                   if protocol.positive_only else ""),
                dataset.voc_dir / "ImageSets" / "Main" / f"{split}.txt",
            )
        sizes[split] = size
    return sizes, skipped
