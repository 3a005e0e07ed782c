"""Load: a sweep of ten tiny models ends with ten records, a consistent leaderboard, bounded memory."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main

TEN_TINY = [
    "test_resnet", "test_efficientnet", "test_vit", "test_convnext", "test_byobnet",
    "test_nfnet", "test_efficientnet_gn", "test_convnext2", "test_vit2", "test_mambaout",
]


@pytest.mark.slow
def test_ten_tiny_models_two_epochs(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ["--models", *TEN_TINY, "--data", str(tiny_voc), "--out", str(out), "--resize", "32", "--crop", "32",
            "--crops", "full", "--epochs", "2", "--pretrained", "none", "--num-workers", "0", "--no-baseline"]
    assert main(args) == 0
    records = [json.loads((out / m / "result.json").read_text()) for m in TEN_TINY]
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records if r["status"] != "ok"]
    frame = pd.read_csv(out / "leaderboard.csv")
    assert sorted(frame["model"]) == sorted(TEN_TINY)
    assert list(frame["rank"]) == list(range(1, 11))
    by_model = {r["model"]: r for r in records}
    for _, row in frame.iterrows():
        assert row["mAP"] == pytest.approx(by_model[row["model"]]["metrics"]["mAP"], abs=1e-5)
    # memory does not grow from model to model: each record's peak RSS stays near the first ones'
    peaks = [r["peak_rss_mb"] for r in records]
    assert all(p is not None and p > 0 for p in peaks)
    assert max(peaks[5:]) < 1.5 * max(peaks[:5]), peaks
    print("peak RSS per model (MiB):", peaks)
