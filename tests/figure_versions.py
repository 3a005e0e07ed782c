"""The library versions that the committed figures were drawn with, recorded in
``tests/data/figure_versions.json``.

A figure's bytes depend on the libraries that draw and encode it: matplotlib and the FreeType it
renders text with, Pillow (which writes matplotlib's PNGs and JPEGs) and the zlib and libjpeg it
encodes with. ``tests/test_committed_results.py`` compares rebuilt figures byte for byte only where
:func:`installed_versions` equals the record (see its docstring).

After upgrading any of them, rebuild the committed results folders, look at the figures that
changed, commit them, then record the installed versions::

    python benchmark.py report --out results
    python benchmark.py report --out results/voc07-real-dev
    python tests/figure_versions.py
"""

from __future__ import annotations

import json
from pathlib import Path

RECORD = Path(__file__).resolve().parent / "data" / "figure_versions.json"
"""Versions under which the committed figures rebuild byte-identically."""


def installed_versions() -> dict[str, str | None]:
    """The installed versions of everything that a figure's bytes depend on (``None``: not
    reported)."""
    import matplotlib
    import PIL
    from matplotlib import ft2font
    from PIL import features

    zlib_ng, turbo = features.version("zlib_ng"), features.version("libjpeg_turbo")
    return {
        "matplotlib": matplotlib.__version__,
        "freetype": ft2font.__freetype_version__,
        "Pillow": PIL.__version__,
        "zlib": f"zlib-ng {zlib_ng}" if zlib_ng else features.version("zlib"),
        "libjpeg": f"libjpeg-turbo {turbo}" if turbo else features.version("jpg"),
    }


def recorded_versions() -> dict[str, str | None]:
    """The versions in :data:`RECORD`."""
    return json.loads(RECORD.read_text(encoding="utf-8"))


def version_differences() -> list[str]:
    """One ``"matplotlib 3.12.0 (recorded 3.11.2)"`` per library whose installed version is not the
    recorded one; empty where all are."""
    installed, recorded = installed_versions(), recorded_versions()
    return [
        f"{name} {installed.get(name)} (recorded {recorded.get(name)})"
        for name in sorted(installed.keys() | recorded.keys())
        if installed.get(name) != recorded.get(name)
    ]


def main() -> None:
    """Write the installed versions to :data:`RECORD`."""
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(installed_versions(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RECORD}")


if __name__ == "__main__":
    main()
