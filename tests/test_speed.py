"""The ``speed`` job runs on a tiny model and reports positive, consistent numbers (no times asserted);
every figure is timed over the full number of steps (small splits cycled), repeated, and shown
with its spread."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import torch

from bench.cli import main, parse_args
from bench.cli.speed import SPEED_STEPS, SPEED_STEPS_CPU, default_speed_steps
from bench.model import build_classifier
from bench.speed.data import default_data_workers
from bench.speed.training import (
    aggregate_repeats,
    bracketed_rates,
    e2e_threads,
    forward_flops_per_image,
    speed_caption,
    speed_table,
    torch_threads,
    with_ratios,
)
from bench.store import SPEED_DATA_FILE, SPEED_FILE
from bench.train.throughput import WARMUP_BATCHES
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


TINY_SPLITS = {"train": 20, "val": 7}
"""Images in ``tiny_voc``'s splits."""


@pytest.mark.slow
def test_speed_reports_positive_consistent_numbers(
    tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "speed"
    steps, batch, repeats = 8, 2, 2
    # both splits have fewer batches than warm-up + timed steps: they must be cycled, not timed short
    assert all(math.ceil(n / batch) < WARMUP_BATCHES + steps for n in TINY_SPLITS.values())
    args = ["speed", "--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), "--resize", "32",
            "--crop", "24", "--batch-size", str(batch), "--eval-batch-size", str(batch), "--speed-steps", str(steps),
            "--speed-repeats", str(repeats), "--speed-workers", "0", "1", "--speed-threads", "1",
            "--speed-course-loop", "--target-rate", "1000"]
    assert main(args) == 0
    rows = json.loads((out / SPEED_FILE).read_text())
    assert [row["workers"] for row in rows] == [0, 1]  # one row per worker count, labelled
    for row in rows:
        assert row["model"] == "test_resnet" and row["precision"] in ("bf16-mixed", "32-true")
        assert row["warmup_steps"] == WARMUP_BATCHES and row["timed_steps"] == steps
        assert row["e2e_threads"] == 1  # --speed-threads 1
        assert len(row["repeats"]) == repeats
        for repeat in row["repeats"]:
            # every end-to-end figure over all the timed steps, the small splits cycled
            assert repeat["e2e_train_timed_batches"] == steps and repeat["e2e_eval_timed_batches"] == steps
            for key in KEYS[:4] + KEYS[5:]:
                assert repeat[key] > 0, key
            for stage in ("train", "eval"):
                ratio = repeat[f"e2e_{stage}_images_per_s"] / repeat[f"model_only_{stage}_images_per_s"]
                assert repeat[f"{stage}_e2e_over_model_only"] == pytest.approx(ratio, rel=0.01, abs=0.0006)
        for key in KEYS:
            assert row[key] > 0, key
        for key in ("e2e_train_images_per_s", "train_e2e_over_model_only", "eval_e2e_over_model_only",
                    "e2e_train_over_course_loop"):
            values = [r[key] for r in row["repeats"]]
            assert row[key] == pytest.approx(statistics.median(values), abs=0.0006)
            assert (row[f"{key}_min"], row[f"{key}_max"]) == (min(values), max(values))
        assert "5 x 3 x 24 x 24" in row["shape"]  # the course protocol's FiveCrop at the given size
    # on the CPU the model alone is timed in steps paired with each row's own end-to-end steps
    assert [row["model_only_timing"] for row in rows] == ["paired", "paired"]
    printed = capsys.readouterr().out
    assert "train img/s e2e" in printed and f"over {repeats} repeat(s)" in printed
    assert f"{steps} steps after {WARMUP_BATCHES} warm-up steps" in printed
    # the data pipeline alone: each loader with 1 .. cores workers, and the workers each rate needs
    measured = json.loads((out / SPEED_DATA_FILE).read_text())
    workers = default_data_workers()
    assert [(r["stage"], r["workers"]) for r in measured["data_only"]] == [
        (stage, w) for stage in ("train", "eval") for w in workers]
    for row in measured["data_only"]:
        assert len(row["repeats"]) == repeats
        assert row["images_per_s"] == pytest.approx(statistics.median(row["repeats"]), abs=0.001)
        assert row["per_worker_images_per_s"] == pytest.approx(row["images_per_s"] / row["workers"], abs=0.001)
        assert row["timed_steps"] == steps and row["warmup_steps"] == WARMUP_BATCHES + row["workers"]
        assert row["decode"] == "pil" and "5 x 3 x 24 x 24" in row["shape"]
    feed = {(r["rate_of"], r["stage"]): r for r in measured["feed"]}
    assert set(feed) == {(who, stage) for who in ("--target-rate", "test_resnet") for stage in ("train", "eval")}
    one_worker = {r["stage"]: r["images_per_s"] for r in measured["data_only"] if r["workers"] == 1}
    for (who, stage), r in feed.items():
        rate = 1000.0 if who == "--target-rate" else rows[0][f"model_only_{stage}_images_per_s"]
        assert r["images_per_s"] == pytest.approx(rate, abs=0.001)
        assert r["workers_needed"] == max(1, math.ceil(rate / one_worker[stage]))
    assert "img/s per worker" in printed and "workers needed" in printed


# hand-made repeats: e2e 1, 2, 6 against model-only 1, 4, 3 img/s
HAND_REPEATS = [
    {"model_only_train_images_per_s": 1.0, "e2e_train_images_per_s": 1.0},
    {"model_only_train_images_per_s": 4.0, "e2e_train_images_per_s": 2.0},
    {"model_only_train_images_per_s": 3.0, "e2e_train_images_per_s": 6.0},
]


def test_aggregate_takes_medians_ranges_and_medians_of_per_repeat_ratios() -> None:
    summary = aggregate_repeats([with_ratios(r) for r in HAND_REPEATS])
    assert summary["model_only_train_images_per_s"] == 3.0
    assert (summary["model_only_train_images_per_s_min"], summary["model_only_train_images_per_s_max"]) == (1.0, 4.0)
    assert summary["e2e_train_images_per_s"] == 2.0
    assert (summary["e2e_train_images_per_s_min"], summary["e2e_train_images_per_s_max"]) == (1.0, 6.0)
    # per-repeat ratios 1.0, 0.5, 2.0: their median is 1.0, not the ratio of the medians (2 / 3)
    assert summary["train_e2e_over_model_only"] == 1.0
    assert (summary["train_e2e_over_model_only_min"], summary["train_e2e_over_model_only_max"]) == (0.5, 2.0)
    assert "eval_e2e_over_model_only" not in summary and "e2e_eval_images_per_s" not in summary  # not measured


def test_aggregate_of_an_even_count_and_of_one_repeat() -> None:
    two = aggregate_repeats([with_ratios(r) for r in HAND_REPEATS[:2]])
    assert two["e2e_train_images_per_s"] == 1.5 and two["train_e2e_over_model_only"] == 0.75
    one = aggregate_repeats([with_ratios(HAND_REPEATS[2])])
    assert one["e2e_train_images_per_s"] == one["e2e_train_images_per_s_min"] == one["e2e_train_images_per_s_max"]
    assert aggregate_repeats([]) == {}


def test_e2e_threads_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.speed.training.available_cores", lambda: 2)
    assert e2e_threads(None, 1) is None  # torch's own
    assert [e2e_threads("auto", w) for w in (0, 1, 2)] == [2, 1, 1]  # cores - workers, at least one
    assert e2e_threads(3, 1) == 3


def test_torch_threads_restores_the_count() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_flops_scale_with_crops() -> None:
    model, _ = build_classifier("test_resnet", Weights("random", "random init"))
    one = forward_flops_per_image(model, 1, 32)
    assert one > 0
    assert forward_flops_per_image(model, 5, 32) == pytest.approx(5 * one)


HEADERS = [
    "model", "precision", "workers", "threads model-only/e2e", "train img/s model-only", "train img/s e2e",
    "train e2e/model", "eval img/s model-only", "eval img/s e2e", "eval e2e/model", "train GFLOP/s", "eval GFLOP/s",
    "matmul peak GFLOP/s", "course-style loop train img/s", "e2e/course-style",
]


def _cells(table: str) -> list[list[str]]:
    """The rows of a GitHub markdown table as stripped cells, header first, the rule left out."""
    lines = table.splitlines()
    assert set(lines[1]) <= {"|", "-", ":"}, lines[1]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in [lines[0], *lines[2:]]]


def test_speed_table_puts_each_number_under_its_header() -> None:
    full = {
        "model": "resnet18", "precision": "bf16-mixed", "shape": "not shown", "workers": 1, "model_only_threads": 2,
        "e2e_threads": 1, "warmup_steps": 3, "timed_steps": 8, "forward_gflops_per_image": 1.8,
        "model_only_train_images_per_s": 40.5, "e2e_train_images_per_s": 20.25, "train_e2e_over_model_only": 0.5,
        "model_only_eval_images_per_s": 160.0, "e2e_eval_images_per_s": 120.0, "eval_e2e_over_model_only": 0.75,
        "e2e_train_gflops_per_s": 110.3, "e2e_eval_gflops_per_s": 219.9, "matmul_peak_gflops_per_s": 1500.0,
        "course_loop_train_images_per_s": 8.1, "e2e_train_over_course_loop": 2.5, "repeats": [{}],
    }
    course_keys = ("course_loop_train_images_per_s", "e2e_train_over_course_loop")
    without_course_loop = {k: v for k, v in full.items() if k not in course_keys}
    without_course_loop |= {"model": "resnet50", "precision": "32-true", "workers": 0, "e2e_threads": 2}
    failed = {"model": "broken", "error": "RuntimeError: boom"}
    header, *rows = _cells(speed_table([full, without_course_loop, failed]))
    assert header == HEADERS
    assert len(rows) == 3
    assert rows[0][:4] == ["resnet18", "bf16-mixed", "1", "2/1"]
    assert [float(c) for c in rows[0][4:]] == [40.5, 20.25, 0.5, 160.0, 120.0, 0.75, 110.3, 219.9, 1500.0, 8.1, 2.5]
    assert rows[1][:4] == ["resnet50", "32-true", "0", "2/2"]
    assert [float(c) for c in rows[1][4:13]] == [40.5, 20.25, 0.5, 160.0, 120.0, 0.75, 110.3, 219.9, 1500.0]
    assert rows[1][13:] == ["–", "–"]  # measured without --speed-course-loop
    assert rows[2] == ["broken"] + ["–"] * (len(HEADERS) - 1)  # a failed model keeps its row, with no numbers


def test_speed_table_shows_the_spread_of_several_repeats() -> None:
    summary = aggregate_repeats([with_ratios(r) for r in HAND_REPEATS])
    row = {"model": "m", "precision": "32-true", "workers": 0, "model_only_threads": 2, "e2e_threads": 2,
           "warmup_steps": 3, "timed_steps": 8, **summary, "repeats": HAND_REPEATS}
    header, cells = _cells(speed_table([row]))
    by_header = dict(zip(header, cells, strict=True))
    assert by_header["train img/s model-only"] == "3.000 (1.000–4.000)"
    assert by_header["train img/s e2e"] == "2.000 (1.000–6.000)"
    assert by_header["train e2e/model"] == "1.000 (0.500–2.000)"
    assert by_header["eval img/s e2e"] == "–"
    assert speed_caption([row]).startswith("Each rate: median (min–max) over 3 repeat(s), each timed over 8 steps "
                                           "after 3 warm-up steps")


def test_default_speed_steps_are_fewer_on_the_cpu(tiny_voc: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert (SPEED_STEPS_CPU, SPEED_STEPS) == (2, 20)
    assert default_speed_steps("cpu") == 2 and default_speed_steps("gpu") == 20 and default_speed_steps("mps") == 20
    assert parse_args(["speed"]).speed_steps is None  # resolved once the device is known
    seen: list[int] = []

    def fake_run_speed(models, **kwargs):  # noqa: ANN001, ANN003, ANN202
        seen.append(kwargs["steps"])
        raise SystemExit(0)

    monkeypatch.setattr("bench.speed.training.run_speed", fake_run_speed)
    with pytest.raises(SystemExit):
        main(["speed", "--models", "test_resnet", "--data", str(tiny_voc), "--accelerator", "cpu",
              "--out", str(tmp_path / "out")])
    assert seen == [2]


BAD_SPEED_FLAGS: dict[str, tuple[list[str], list[str]]] = {
    # case: (flags, texts the error message must contain)
    "zero-steps": (["--speed-steps", "0"], ["--speed-steps"]),
    "zero-repeats": (["--speed-repeats", "0"], ["--speed-repeats"]),
    "negative-workers": (["--speed-workers", "0", "-1"], ["--speed-workers", "0 -1"]),
    "repeated-workers": (["--speed-workers", "1", "1"], ["--speed-workers", "distinct"]),
    "bad-threads": (["--speed-threads", "many"], ["--speed-threads", "'many'"]),
    "zero-threads": (["--speed-threads", "0"], ["--speed-threads", "'0'"]),
}


@pytest.mark.parametrize(("flags", "named"), list(BAD_SPEED_FLAGS.values()), ids=list(BAD_SPEED_FLAGS))
def test_bad_speed_flags_exit_2_naming_the_flag(
    flags: list[str], named: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results"
    argv = ["speed", "--models", "test_resnet", "--data", str(tmp_path / "no-voc"), "--out", str(out), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")  # one line, no traceback
    for text in named:
        assert text in err, err
    assert not out.exists()


@pytest.mark.parametrize("flags", [["--speed-workers", "0"], ["--speed-threads", "auto"]])
def test_a_run_has_no_speed_flags_and_says_whose_they_are(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--models", "test_resnet", "--out", str(tmp_path / "results"), *flags])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"benchmark.py run: error: unrecognized arguments: {' '.join(flags)}" in err
    assert f"{flags[0]} is a flag of `python benchmark.py speed`" in err


def test_course_loop_flag() -> None:
    assert parse_args(["speed", "--speed-course-loop"]).speed_course_loop is True
    assert parse_args(["speed"]).speed_course_loop is False
    with pytest.raises(SystemExit):  # the name it had before it was released is not kept
        parse_args(["speed", "--speed-seed-loop"])


def test_bracketed_rates_pool_both_halves() -> None:
    """All the images over all the seconds: 16 images in 2 s before and 8 in 2 s after are 6 img/s
    (not the mean of 8 and 4 img/s); without a second half, the first alone."""
    before = {"train": (16, 2.0), "eval": (32, 1.0)}
    assert bracketed_rates(before, {"train": (8, 2.0), "eval": (32, 3.0)}) == {"train": 6.0, "eval": 16.0}
    assert bracketed_rates(before, {}) == {"train": 8.0, "eval": 32.0}


def test_bracketing_cancels_a_steady_drift() -> None:
    """A machine slowing down steadily: the model alone runs at 10 img/s in the first half and 6 in
    the second, and the pipeline, measured in between at the true mid-point speed of 8, matches the model.
    Timed only before (10 img/s) the ratio would read 0.8; bracketed, 1.0."""
    model_before, model_after = (40, 4.0), (24, 4.0)  # 10 and 6 img/s over equal times
    rates = bracketed_rates({"train": model_before}, {"train": model_after})
    assert 8.0 / rates["train"] == pytest.approx(1.0)
    assert 8.0 / (model_before[0] / model_before[1]) == pytest.approx(0.8)
