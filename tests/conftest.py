"""Shared pytest fixtures."""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from voc_tree import write_voc_tree

from voc.constants import VOC_CLASSES

SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "voc-fixtures"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """``load_script("protocol_time")``: ``scripts/protocol_time.py`` imported as a module (scripts/ is
    no package)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def voc_fixtures() -> Path:
    """The real VOC files in ``../shared/voc-fixtures``; skips the test where they are absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real VOC fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def tiny_voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 train / 7 val images of 64x48 with 1-2 objects each (7 val: DDP's sampler pads it)."""
    root = tmp_path_factory.mktemp("voc")
    rng = random.Random(0)
    images = {
        f"img{k:03d}": [(rng.choice(VOC_CLASSES), False), (rng.choice(VOC_CLASSES), rng.random() < 0.2)]
        for k in range(27)
    }
    ids = list(images)
    write_voc_tree(root, images, splits={"train": ids[:20], "val": ids[20:]}, image_size=(64, 48))
    return root


@pytest.fixture
def offline_weight_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Converted weights go to one temp folder of the session (not the user's ~/.cache); the
    Hugging Face and torch hub caches are not looked at, and the hub never answers."""
    import bench.weights as weights_mod

    folder = tmp_path_factory.getbasetemp() / "voc-bench-cache"
    monkeypatch.setenv("VOC_BENCH_CACHE", str(folder))
    monkeypatch.setattr(weights_mod, "_cached_file", lambda cfg: None)
    monkeypatch.setattr(weights_mod, "hub_reachable", lambda timeout=2.0: False)
    return folder
