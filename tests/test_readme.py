"""README's real-photo table is the committed leaderboard's generated overview, not a hand-typed copy."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEADERBOARD = ROOT / "results" / "voc07-real-dev" / "leaderboard.md"


def _table_after(text: str, marker: str) -> list[list[str]]:
    """The cells of the first markdown table after ``marker``, links reduced to their text."""
    rows = []
    for line in text.split(marker, 1)[1].lstrip("\n").splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell).strip() for cell in line.strip().strip("|").split("|")]
        if not all(set(cell) <= set("-: ") for cell in cells):  # not the separator row
            rows.append(cells)
    return rows


def test_readme_shows_the_real_photo_overview_as_generated() -> None:
    overview = _table_after(LEADERBOARD.read_text(encoding="utf-8"), "## Overview")
    readme = _table_after((ROOT / "README.md").read_text(encoding="utf-8"), "## Real photos, real weights")
    assert len(overview) > 2 and readme == overview
