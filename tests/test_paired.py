"""Model-only steps paired with end-to-end steps: the workers are stopped while the model runs
alone, a pair is timed only when its end-to-end batch was, and the model-only time stays out of
the end-to-end figure (hand-driven clock)."""

from __future__ import annotations

import multiprocessing
import signal
import time

import pytest
import torch

from bench.speed import paired as paired_module
from bench.speed.paired import PairedModelOnly, PairedModelOnlyCallback, can_pair, paused_workers
from bench.train import throughput
from bench.train.throughput import WARMUP_BATCHES, ThroughputMeter

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="POSIX signals")


def _count_forever(counter) -> None:  # noqa: ANN001 - a multiprocessing.RawValue
    while True:
        counter.value += 1
        time.sleep(0.001)


def _advances(counter, seconds: float = 0.3) -> bool:  # noqa: ANN001
    before = counter.value
    time.sleep(seconds)
    return counter.value > before


def test_paused_workers_stops_children_and_lets_them_go_on_also_after_an_error() -> None:
    # A RawValue, written by the child alone: a locked Value's reads take its lock, and a child
    # stopped while holding it would block this process's reads for good (a CI run hung so).
    counter = multiprocessing.RawValue("q", 0)
    child = multiprocessing.get_context("fork").Process(target=_count_forever, args=(counter,), daemon=True)
    child.start()
    try:
        while counter.value == 0:
            time.sleep(0.01)
        assert _advances(counter)
        with paused_workers():
            time.sleep(0.05)  # a count in flight when the signal came lands now
            assert not _advances(counter)
        assert _advances(counter)
        with pytest.raises(RuntimeError), paused_workers():
            raise RuntimeError("the model-only step failed")
        assert _advances(counter)  # resumed although the block raised
    finally:
        child.kill()
        child.join()


def test_pairing_needs_the_cpu() -> None:
    assert can_pair("cpu")
    assert not can_pair("gpu")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pairs_are_timed_with_their_batches_and_left_out_of_the_end_to_end_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(throughput.time, "perf_counter", clock)
    monkeypatch.setattr(paired_module.time, "perf_counter", clock)
    model_only_seconds = {"train": 3.0, "eval": 0.5}

    def step(stage: str):  # noqa: ANN202
        def run() -> None:
            clock.now += model_only_seconds[stage]
        return run

    paired = PairedModelOnly({"train": (8, step("train")), "eval": (16, step("eval"))})
    meter = ThroughputMeter()
    callback = PairedModelOnlyCallback(meter, paired)
    timed = 4
    meter.on_train_epoch_start(None, None)
    for _ in range(WARMUP_BATCHES + timed):
        clock.now += 2.0  # an end-to-end training batch of 8 images: 4 img/s
        meter.on_train_batch_end(None, None, None, (torch.zeros(8),), 0)
        callback.on_train_batch_end(None, None, None, None, 0)
    meter.on_test_epoch_start(None, None)
    for _ in range(WARMUP_BATCHES + timed):
        clock.now += 1.0  # an eval batch of 16: 16 img/s
        meter.on_test_batch_end(None, None, None, (torch.zeros(16),), 0)
        callback.on_test_batch_end(None, None, None, None, 0)
    # one model-only step per end-to-end batch; only those after timed batches count
    assert paired.timed_steps == {"train": timed, "eval": timed}
    assert paired.images_per_s("train") == pytest.approx(8 / 3.0)
    assert paired.images_per_s("eval") == pytest.approx(16 / 0.5)
    # the end-to-end figures are the batches' own time, the paired steps left out
    assert meter.train.timed_batches == timed and meter.eval.timed_batches == timed
    assert meter.train.steady_images_per_s() == pytest.approx(4.0)
    assert meter.eval.steady_images_per_s() == pytest.approx(16.0)


def test_no_timed_pair_gives_no_rate() -> None:
    paired = PairedModelOnly({"eval": (4, lambda: None)})
    paired.step("eval", timed=False)
    assert paired.images_per_s("eval") is None and paired.timed_steps == {"eval": 0}
