"""The data-only meter: what it counts, and the worker arithmetic (hand-computed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.speed.data as data_speed
from bench.cli import main
from bench.data import DataSource
from bench.protocols.finetune import COURSE_PROTOCOL
from bench.speed.data import feed_rows, per_worker_rate, workers_needed
from bench.store import SPEED_DATA_FILE, SPEED_FILE
from bench.train.experiment import TrainerOptions


def test_workers_needed_rounds_up() -> None:
    assert workers_needed(100.0, 30.0) == 4  # 3.33 -> 4
    assert workers_needed(90.0, 30.0) == 3
    assert workers_needed(1.0, 30.0) == 1  # at least one
    with pytest.raises(ValueError, match="positive"):
        workers_needed(10.0, 0.0)


def _row(stage: str, workers: int, rate: float) -> dict:
    return {"stage": stage, "workers": workers, "images_per_s": rate, "per_worker_images_per_s": rate / workers}


def test_per_worker_rate_is_the_one_worker_row() -> None:
    rows = [_row("train", 1, 40.0), _row("train", 2, 70.0), _row("eval", 2, 90.0)]
    assert per_worker_rate(rows, "train") == 40.0
    assert per_worker_rate(rows, "eval") == 45.0  # no 1-worker row: the best per-worker rate
    assert per_worker_rate([], "train") is None


def test_feed_rows_by_hand() -> None:
    data = [_row("train", 1, 40.0), _row("eval", 1, 120.0)]
    models = [{"model": "m", "model_only_train_images_per_s": 250.0, "model_only_eval_images_per_s": 1300.0},
              {"model": "m", "model_only_train_images_per_s": 250.0, "model_only_eval_images_per_s": 1300.0},
              {"model": "broken", "error": "x"}]
    rows = feed_rows(models, data, target_rate=3000.0)
    assert [(r["rate_of"], r["stage"], r["workers_needed"]) for r in rows] == [
        ("--target-rate", "train", 75), ("--target-rate", "eval", 25), ("m", "train", 7), ("m", "eval", 11)]


def test_data_only_counts_every_timed_batch_of_a_cycled_split(
    tiny_voc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """7 val images in batches of 2 are 4 batches: 3 + 0 warm-up and 8 timed batches cycle the split,
    and the timed images are 8 full batches (a short split is never timed as one batch)."""
    clock = iter(range(100))
    monkeypatch.setattr(data_speed.time, "perf_counter", lambda: float(next(clock)))  # 1 s per call
    protocol = COURSE_PROTOCOL.with_overrides(resize=32, crop=24, eval_batch_size=2, batch_size=2)
    rate = data_speed.data_only_images_per_s(protocol, DataSource(root=tiny_voc), TrainerOptions(num_workers=0),
                                             stage="eval", workers=0, steps=8)
    assert rate == 16.0  # 8 batches x 2 images between two perf_counter calls 1 s apart
    with pytest.raises(ValueError, match="unknown stage"):
        data_speed.data_only_images_per_s(protocol, DataSource(root=tiny_voc), TrainerOptions(num_workers=0),
                                          stage="test", workers=0, steps=1)


def test_speed_data_only_times_no_model(tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = ["speed", "--speed-data-only", "--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out),
            "--resize", "32", "--crop", "24", "--batch-size", "2", "--eval-batch-size", "2", "--speed-steps", "2",
            "--speed-repeats", "1", "--target-rate", "100", "--decode", "torchvision"]
    assert main(args) == 0
    assert not (out / SPEED_FILE).exists()  # no model measured
    measured = json.loads((out / SPEED_DATA_FILE).read_text())
    assert {r["decode"] for r in measured["data_only"]} == {"torchvision"}
    assert [r["rate_of"] for r in measured["feed"]] == ["--target-rate", "--target-rate"]
    printed = capsys.readouterr().out
    assert "img/s data-only" in printed and "train img/s e2e" not in printed


def test_speed_data_only_refuses_the_model_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["speed", "--speed-data-only", "--speed-workers", "0", "--models", "test_resnet", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--speed-workers: these time a model" in capsys.readouterr().err


def test_loader_rate_leaves_out_what_between_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    """2 warm-up and 3 timed batches of 4 images, 1 s each to consume; after each, a 5 s paired
    step that ``between`` reports: 12 images in 3 s, not in 18 s; ``between`` told which were timed."""
    now = [0.0]
    monkeypatch.setattr(data_speed.time, "perf_counter", lambda: now[0])
    batches = [(None, [0] * 4, None)] * 5
    calls: list[bool] = []

    def consume(batch: tuple) -> int:
        now[0] += 1.0
        return len(batch[1])

    def between(timed: bool) -> float:
        calls.append(timed)
        now[0] += 5.0
        return 5.0

    rate = data_speed.loader_images_per_s(batches, steps=3, warmup=2, consume=consume, between=between)
    assert rate == pytest.approx(12 / 3.0)
    assert calls == [False, False, True, True, True]


@pytest.mark.slow
@pytest.mark.lab
def test_worker_steps_script_prints_every_step(tiny_voc: Path) -> None:
    """``scripts/worker_steps.py`` (benchmarks/README.md's per-step table) runs our transform's steps on a VOC
    tree."""
    import subprocess
    import sys

    year = next(tiny_voc.glob("VOCdevkit/VOC*"))
    script = Path(__file__).parents[1] / "scripts" / "worker_steps.py"
    done = subprocess.run([sys.executable, str(script), str(year), "--images", "6", "--batch", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "ms/image" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| decode (torchvision)", "| resize to 224 x 224", "| to float and normalise", "| collate batches of 2",
        "| sum", "| instead: collate uint8 batches of 2, then to float and normalise (main process)"]
    steps = [float(row.split(" | ")[1].rstrip(" |")) for row in rows]
    assert all(ms > 0 for ms in steps) and steps[4] == pytest.approx(sum(steps[:4]), abs=0.02)
    empty = subprocess.run([sys.executable, str(script), str(tiny_voc)], capture_output=True, text=True, timeout=120)
    assert empty.returncode == 2 and "JPEGImages has no .jpg files" in empty.stderr
