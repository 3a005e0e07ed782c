"""The steady-state meter on a hand-driven clock: warm-up left out, one rate per window of
``WINDOW_BATCHES`` batches, median and range in the record."""

from __future__ import annotations

import itertools

import pytest

from bench.train import throughput
from bench.train.throughput import WARMUP_BATCHES, WINDOW_BATCHES, ThroughputMeter, _Meter


class Clock:
    """``time.perf_counter`` stand-in: each batch takes the next of the given durations."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(throughput.time, "perf_counter", fake)
    return fake


def run_epoch(meter: _Meter, clock: Clock, seconds: list[float], images: int = 4) -> None:
    meter.start_epoch()
    for duration in seconds:
        clock.now += duration
        meter.batch_end(images)


def test_windows_after_the_warm_up(clock: Clock) -> None:
    assert (WARMUP_BATCHES, WINDOW_BATCHES) == (3, 5)
    meter = _Meter()
    warm_up = [10.0] * WARMUP_BATCHES  # slow, and left out
    # two full windows (1 s and 2 s a batch of 4 images: 4 and 2 img/s) and 3 batches of an unfinished one
    run_epoch(meter, clock, warm_up + [1.0] * 5 + [2.0] * 5 + [0.5] * 3)
    assert meter.batches == WARMUP_BATCHES + 13 and meter.timed_batches == 13
    assert meter.windows == [4.0, 2.0]
    assert meter.steady_images_per_s() == pytest.approx(13 * 4 / (5 + 10 + 1.5))  # every steady batch
    summary = meter.summary("train")
    assert summary == {"train_images_per_s": 3.0, "train_images_per_s_min": 2.0, "train_images_per_s_max": 4.0,
                       "train_windows": 2}


def test_a_window_never_spans_two_epochs(clock: Clock) -> None:
    meter = _Meter()
    run_epoch(meter, clock, [1.0] * (WARMUP_BATCHES + 4))  # 4 steady batches: no window
    run_epoch(meter, clock, [1.0] * WARMUP_BATCHES + [0.5] * 5)  # warm-up again, then one window of 8 img/s
    assert meter.windows == [8.0]
    assert meter.timed_batches == 9


def test_summary_without_a_window_falls_back_to_the_steady_rate_with_no_range(clock: Clock) -> None:
    meter = _Meter()
    run_epoch(meter, clock, [1.0] * WARMUP_BATCHES + [2.0] * 2)
    assert meter.summary("eval") == {"eval_images_per_s": 2.0, "eval_images_per_s_min": None,
                                     "eval_images_per_s_max": None, "eval_windows": 0}
    short = _Meter()
    run_epoch(short, clock, [0.5, 1.0])  # only warm-up batches: every batch's rate, as before
    assert short.summary("eval")["eval_images_per_s"] == round(8 / 1.5, 3)  # rates rounded to 0.001
    assert _Meter().summary("eval")["eval_images_per_s"] is None


def test_record_sums_processes_and_says_how_it_measured(clock: Clock) -> None:
    meter = ThroughputMeter()
    run_epoch(meter.train, clock, [1.0] * WARMUP_BATCHES + [1.0] * 5 + [0.5] * 5 + [0.25] * 5)
    run_epoch(meter.eval, clock, [1.0] * WARMUP_BATCHES + [0.5] * 5)
    record = meter.record(world_size=2)
    assert (record["train_images_per_s"], record["train_images_per_s_min"], record["train_images_per_s_max"]) == (
        16.0, 8.0, 32.0
    )
    assert record["train_windows"] == 3 and record["eval_windows"] == 1
    assert record["eval_images_per_s"] == record["eval_images_per_s_min"] == record["eval_images_per_s_max"] == 16.0
    assert (record["warmup_batches"], record["window_batches"]) == (WARMUP_BATCHES, WINDOW_BATCHES)
    assert "median" in record["measured"] and "windows of 5 batches" in record["measured"]


def test_median_of_an_even_number_of_windows(clock: Clock) -> None:
    meter = _Meter()
    rates = [1.0, 4.0, 2.0, 8.0]  # seconds a batch of 4 images: windows of 4, 1, 2, 0.5 img/s
    run_epoch(meter, clock, [1.0] * WARMUP_BATCHES + list(itertools.chain.from_iterable([r] * 5 for r in rates)))
    assert meter.windows == [4.0, 1.0, 2.0, 0.5]
    assert meter.summary("train")["train_images_per_s"] == 1.5
