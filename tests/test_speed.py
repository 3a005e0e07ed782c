"""``--speed`` runs on a tiny model and reports positive, consistent numbers (no times asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.model import build_classifier
from bench.speed import SPEED_FILE, forward_flops_per_image, speed_table
from bench.weights import Weights

KEYS = (
    "model_only_train_images_per_s",
    "e2e_train_images_per_s",
    "model_only_eval_images_per_s",
    "e2e_eval_images_per_s",
    "matmul_peak_gflops_per_s",
    "seed_loop_train_images_per_s",
)


def test_speed_reports_positive_consistent_numbers(tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "speed"
    args = ["--speed", "--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), "--resize", "32",
            "--crop", "24", "--batch-size", "2", "--eval-batch-size", "2", "--speed-steps", "2", "--num-workers", "0",
            "--speed-seed-loop"]
    assert main(args) == 0
    rows = json.loads((out / SPEED_FILE).read_text())
    assert len(rows) == 1
    row = rows[0]
    assert row["model"] == "test_resnet" and row["precision"] in ("bf16-mixed", "32-true")
    for key in KEYS:
        assert row[key] > 0, key
    assert row["train_e2e_over_model_only"] == pytest.approx(row["e2e_train_images_per_s"] / row["model_only_train_images_per_s"], rel=0.01)
    assert row["eval_e2e_over_model_only"] == pytest.approx(row["e2e_eval_images_per_s"] / row["model_only_eval_images_per_s"], rel=0.01)
    assert "5 x 3 x 24 x 24" in row["shape"]  # the seed protocol's FiveCrop at the given size
    assert "train img/s e2e" in capsys.readouterr().out


def test_flops_scale_with_crops() -> None:
    model, _ = build_classifier("test_resnet", Weights("random", "random init"))
    one = forward_flops_per_image(model, 1, 32)
    assert one > 0
    assert forward_flops_per_image(model, 5, 32) == pytest.approx(5 * one)


def test_failed_row_shown() -> None:
    assert "–" in speed_table([{"model": "x", "error": "boom"}])
