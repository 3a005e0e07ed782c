"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "voc-fixtures"


@pytest.fixture(scope="session")
def voc_fixtures() -> Path:
    """The real VOC files in ``../shared/voc-fixtures``; skips the test where they are absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real VOC fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES
