"""Which VOC data a run uses: a real VOCdevkit, or the cached synthetic set."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voc.synthetic import DEFAULT_ROOTS, DEFAULT_SIZES, generate_synthetic_voc, is_complete_synthetic_voc

log = logging.getLogger(__name__)

DEFAULT_VOC_ROOT = Path("data")
"""``--data auto`` looks for ``./data/VOCdevkit`` (and ``$VOC_ROOT``)."""
SYNTHETIC_ROOT = DEFAULT_ROOTS["2012"]
SYNTHETIC_SIZE: Mapping[str, int] = {"n_train": DEFAULT_SIZES["2012"]["n_train"],
                                     "n_val": DEFAULT_SIZES["2012"]["n_val"], "seed": 0}
"""The synthetic set of the embedded default run."""
SYNTHETIC_VOC2007_ROOT = DEFAULT_ROOTS["2007"]
SYNTHETIC_VOC2007_SIZE: Mapping[str, int] = {**DEFAULT_SIZES["2007"], "seed": 0}
"""The synthetic set of ``--year 2007``: VOC2007's split sizes (``python -m voc synth --year 2007``)."""


@dataclass(frozen=True)
class DataSource:
    """A VOC tree on disk; ``synthetic`` holds the generator's arguments when it made the tree."""

    root: Path
    synthetic: Mapping[str, Any] | None = field(default=None)
    skipped: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Images left out (``--skip-bad-images``): split → {id: reason}."""

    @property
    def is_synthetic(self) -> bool:
        return self.synthetic is not None

    def describe(self, year: str, train_split: str, eval_split: str) -> str:
        """Short text for leaderboards, e.g. ``synthetic VOC2012 train→val (seed 0, 1600/400)``."""
        name = f"VOC{year} {train_split}→{eval_split}"
        if self.synthetic is None:
            return name
        s = self.synthetic
        sizes = "/".join(str(s[k]) for k in ("n_train", "n_val", "n_test") if s.get(k))
        return f"synthetic {name} (seed {s['seed']}, {sizes})"

    def to_record(self, year: str, train_split: str, eval_split: str) -> dict[str, Any]:
        record: dict[str, Any] = {
            "kind": "synthetic" if self.is_synthetic else "voc",
            "root": str(self.root),
            "year": year,
            "train_split": train_split,
            "eval_split": eval_split,
            "description": self.describe(year, train_split, eval_split),
        }
        if self.synthetic is not None:
            record["synthetic"] = dict(self.synthetic)
        if self.skipped:
            record["skipped_images"] = {split: dict(ids) for split, ids in self.skipped.items()}
        return record


def find_real_voc(env: Mapping[str, str] | None = None) -> Path | None:
    """``$VOC_ROOT`` if set, else ``./data`` if it holds a ``VOCdevkit``; ``None`` otherwise."""
    env = os.environ if env is None else env
    if env.get("VOC_ROOT"):
        return Path(env["VOC_ROOT"])
    if (DEFAULT_VOC_ROOT / "VOCdevkit").is_dir():
        return DEFAULT_VOC_ROOT
    return None


def synthetic_source(
    root: Path = SYNTHETIC_ROOT, *, year: str = "2012", n_train: int, n_val: int, seed: int, n_test: int = 0
) -> DataSource:
    """The synthetic set at ``root``, generated once and reused while its arguments match."""
    if is_complete_synthetic_voc(root, n_train, n_val, n_test, year, seed):
        log.info("Using the cached synthetic VOC set at %s", root)
    else:
        log.info("Generating the synthetic VOC set at %s (%d train / %d val / %d test images, seed %d) ...",
                 root, n_train, n_val, n_test, seed)
        generate_synthetic_voc(root, n_train, n_val, n_test=n_test, year=year, seed=seed,
                               workers=min(4, os.cpu_count() or 1))
    synthetic = {"seed": seed, "n_train": n_train, "n_val": n_val, "year": year}
    if n_test:
        synthetic["n_test"] = n_test
    return DataSource(root=root, synthetic=synthetic)


def default_synthetic(year: str) -> DataSource:
    """The synthetic set ``benchmark.py`` uses for ``year``: the embedded default's for 2012,
    VOC2007's sizes for 2007 (each generated once)."""
    if year == "2007":
        return synthetic_source(SYNTHETIC_VOC2007_ROOT, year=year, **SYNTHETIC_VOC2007_SIZE)
    return synthetic_source(year=year, **SYNTHETIC_SIZE)


DEFAULT_YEAR = "2012"
"""The year ``auto`` and ``synthetic`` resolve to unless a protocol or ``--year`` says otherwise: the
embedded synthetic set's (VOC2012 layout, train and val), as the course protocol's VOC2012."""


def resolve_data(data: str, *, year: str = DEFAULT_YEAR) -> DataSource:
    """``auto``: real VOC at ``./data/VOCdevkit`` or ``$VOC_ROOT``, else the synthetic set;
    ``synthetic``: the synthetic set; anything else: a path to a VOC tree."""
    if data == "synthetic":
        return default_synthetic(year)
    if data == "auto":
        found = find_real_voc()
        if found is None:
            return default_synthetic(year)
        return DataSource(root=found)
    return DataSource(root=Path(data))
