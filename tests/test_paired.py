"""Model-only steps paired with end-to-end steps: the workers are stopped while the model runs
alone, a pair is timed only when its end-to-end batch was, and the model-only time stays out of
the end-to-end figure (hand-driven clock)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading

import pytest
import torch

from bench.speed import paired as paired_module
from bench.speed.paired import PairedModelOnly, PairedModelOnlyCallback, can_pair, paused_workers
from bench.train import throughput
from bench.train.throughput import WARMUP_BATCHES, ThroughputMeter

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="POSIX signals")


def _echo(conn) -> None:  # noqa: ANN001 - a multiprocessing Connection
    """The child: sends back every message it gets, so the parent can see it run."""
    while True:
        conn.send(conn.recv())


def _answers(conn, message: int) -> bool:  # noqa: ANN001
    """The child sends ``message`` back (waiting for its answer, 60 s at most: a hang guard)."""
    conn.send(message)
    return conn.poll(60) and conn.recv() == message


def _reported(pid: int, stopped: bool) -> bool:
    """Whether the kernel reports the child ``pid`` stopped (by SIGSTOP), or continued: waitpid returns
    as the child changes state; a thread waits in it so that a child that never does fails the test
    after 60 s (a hang guard) rather than hanging it."""
    statuses: list[int] = []
    flags = os.WUNTRACED if stopped else os.WCONTINUED
    waiter = threading.Thread(target=lambda: statuses.append(os.waitpid(pid, flags)[1]), daemon=True)
    waiter.start()
    waiter.join(60)
    if not statuses:
        return False
    if stopped:
        return os.WIFSTOPPED(statuses[0]) and os.WSTOPSIG(statuses[0]) == signal.SIGSTOP
    return os.WIFCONTINUED(statuses[0])


def test_paused_workers_stops_children_and_lets_them_go_on_also_after_an_error() -> None:
    # No sleeping: waitpid reports the child's stop and continue as they happen, and a child that
    # answers every message shows whether it runs.
    context = multiprocessing.get_context("fork")
    conn, child_end = context.Pipe()
    child = context.Process(target=_echo, args=(child_end,), daemon=True)
    child.start()
    try:
        assert _answers(conn, 1)
        with paused_workers():
            assert _reported(child.pid, stopped=True)
            conn.send(2)
            assert not conn.poll()  # stopped: no answer while the block runs
        assert _reported(child.pid, stopped=False)
        assert conn.poll(60) and conn.recv() == 2  # gone on: answers what came while it was stopped
        with pytest.raises(RuntimeError), paused_workers():
            assert _reported(child.pid, stopped=True)
            raise RuntimeError("the model-only step failed")
        assert _reported(child.pid, stopped=False)
        assert _answers(conn, 3)  # resumed although the block raised
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
