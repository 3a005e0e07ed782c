"""``--speed`` runs on a tiny model and reports positive, consistent numbers (no times asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import build_parser, main
from bench.model import build_classifier
from bench.store import SPEED_FILE
from bench.train.speed import forward_flops_per_image, speed_table
from bench.weights import Weights

KEYS = (
    "model_only_train_images_per_s",
    "e2e_train_images_per_s",
    "model_only_eval_images_per_s",
    "e2e_eval_images_per_s",
    "matmul_peak_gflops_per_s",
    "course_loop_train_images_per_s",
    "e2e_train_over_course_loop",
)


def test_speed_reports_positive_consistent_numbers(
    tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "speed"
    args = ["--speed", "--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), "--resize", "32",
            "--crop", "24", "--batch-size", "2", "--eval-batch-size", "2", "--speed-steps", "2", "--num-workers", "0",
            "--speed-course-loop"]
    assert main(args) == 0
    rows = json.loads((out / SPEED_FILE).read_text())
    assert len(rows) == 1
    row = rows[0]
    assert row["model"] == "test_resnet" and row["precision"] in ("bf16-mixed", "32-true")
    for key in KEYS:
        assert row[key] > 0, key
    for stage in ("train", "eval"):
        ratio = row[f"e2e_{stage}_images_per_s"] / row[f"model_only_{stage}_images_per_s"]
        assert row[f"{stage}_e2e_over_model_only"] == pytest.approx(ratio, rel=0.01, abs=0.0006)  # rounded to 0.001
    assert row["e2e_train_over_course_loop"] == pytest.approx(
        row["e2e_train_images_per_s"] / row["course_loop_train_images_per_s"], abs=0.006  # rounded to 0.01
    )
    assert "5 x 3 x 24 x 24" in row["shape"]  # the course protocol's FiveCrop at the given size
    assert "train img/s e2e" in capsys.readouterr().out


def test_flops_scale_with_crops() -> None:
    model, _ = build_classifier("test_resnet", Weights("random", "random init"))
    one = forward_flops_per_image(model, 1, 32)
    assert one > 0
    assert forward_flops_per_image(model, 5, 32) == pytest.approx(5 * one)


HEADERS = [
    "model", "precision", "train img/s model-only", "train img/s e2e", "train e2e/model", "eval img/s model-only",
    "eval img/s e2e", "eval e2e/model", "train GFLOP/s", "eval GFLOP/s", "matmul peak GFLOP/s",
    "course-style loop train img/s", "e2e/course-style",
]


def _cells(table: str) -> list[list[str]]:
    """The rows of a GitHub markdown table as stripped cells, header first, the rule left out."""
    lines = table.splitlines()
    assert set(lines[1]) <= {"|", "-", ":"}, lines[1]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in [lines[0], *lines[2:]]]


def test_speed_table_puts_each_number_under_its_header() -> None:
    full = {
        "model": "resnet18", "precision": "bf16-mixed", "shape": "not shown", "forward_gflops_per_image": 1.8,
        "model_only_train_images_per_s": 40.5, "e2e_train_images_per_s": 20.25, "train_e2e_over_model_only": 0.5,
        "model_only_eval_images_per_s": 160.0, "e2e_eval_images_per_s": 120.0, "eval_e2e_over_model_only": 0.75,
        "e2e_train_gflops_per_s": 110.3, "e2e_eval_gflops_per_s": 219.9, "matmul_peak_gflops_per_s": 1500.0,
        "course_loop_train_images_per_s": 8.1, "e2e_train_over_course_loop": 2.5,
    }
    course_keys = ("course_loop_train_images_per_s", "e2e_train_over_course_loop")
    without_course_loop = {k: v for k, v in full.items() if k not in course_keys}
    without_course_loop |= {"model": "resnet50", "precision": "32-true"}
    failed = {"model": "broken", "error": "RuntimeError: boom"}
    header, *rows = _cells(speed_table([full, without_course_loop, failed]))
    assert header == HEADERS
    assert len(rows) == 3
    assert rows[0][:2] == ["resnet18", "bf16-mixed"]
    assert [float(c) for c in rows[0][2:]] == [40.5, 20.25, 0.5, 160.0, 120.0, 0.75, 110.3, 219.9, 1500.0, 8.1, 2.5]
    assert rows[1][:2] == ["resnet50", "32-true"]
    assert [float(c) for c in rows[1][2:11]] == [40.5, 20.25, 0.5, 160.0, 120.0, 0.75, 110.3, 219.9, 1500.0]
    assert rows[1][11:] == ["–", "–"]  # measured without --speed-course-loop
    assert rows[2] == ["broken"] + ["–"] * (len(HEADERS) - 1)  # a failed model keeps its row, with no numbers


def test_old_course_loop_flag_is_an_alias() -> None:
    parser = build_parser()
    assert parser.parse_args(["--speed-seed-loop"]).speed_course_loop is True
    assert parser.parse_args(["--speed-course-loop"]).speed_course_loop is True
    assert parser.parse_args([]).speed_course_loop is False
