"""Interruptions from outside: SIGINT, SIGKILL + --resume, and two sweeps writing into one --out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _command(tiny_voc: Path, out: Path, *models: str, epochs: int, baseline: bool = False) -> list[str]:
    cmd = [
        sys.executable, str(ROOT / "benchmark.py"), "--models", *models, "--data", str(tiny_voc), "--out", str(out),
        "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", str(epochs), "--pretrained", "none",
        "--no-report", "--num-workers", "0",
    ]
    return cmd if baseline else [*cmd, "--no-baseline"]


def _sigint_at_its_default() -> None:
    """In the sweep's process before it starts: SIGINT as a terminal's Ctrl+C finds it. A shell starts a
    background job with SIGINT ignored, which the sweep would inherit (a pytest run started with ``&``
    hung here so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(cmd: list[str], cwd: Path, stderr: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen:
    """The sweep, as from a terminal; ``PYTHONFAULTHANDLER=1`` lets :func:`_stacks_of_hung` ask for its stacks."""
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env={**ENV, "PYTHONFAULTHANDLER": "1"},
                            cwd=cwd, preexec_fn=_sigint_at_its_default)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until ``path`` exists; fails if ``proc`` ended first or time ran out."""
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert path.exists() and proc.poll() is None, f"{path} did not appear while the sweep ran"


def _stacks_of_hung(proc: subprocess.Popen, stderr: Path) -> str:
    """SIGABRT a process started with ``PYTHONFAULTHANDLER=1``: it prints every thread's stack to
    its stderr before dying; returns that part of its stderr."""
    proc.send_signal(signal.SIGABRT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    text = stderr.read_text(errors="replace")
    start = text.find("Fatal Python error")
    return text[start if start >= 0 else -4000:].split("\nExtension modules:")[0]


def _saved_epoch(checkpoint: Path) -> int:
    """The epoch of a Lightning checkpoint (written atomically: a reader sees a whole file)."""
    import torch

    return torch.load(checkpoint, map_location="cpu", weights_only=False)["epoch"]


@pytest.mark.slow
def test_sigint_keeps_finished_records_and_leaderboard(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    stderr = tmp_path / "stderr.txt"
    checkpoint = out / "test_resnet" / "checkpoints" / "last.ckpt"
    cmd = _command(tiny_voc, out, "test_resnet", "test_efficientnet", epochs=1000, baseline=True)
    with stderr.open("wb") as err:
        proc = _start(cmd, tmp_path, stderr=err)
    try:
        _wait_for(checkpoint, proc)
        saved = _saved_epoch(checkpoint)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)  # a hang guard only: what it did is checked below
        except subprocess.TimeoutExpired:  # say where it hung
            pytest.fail("the sweep did not stop within 120 s of SIGINT; its stderr and stacks:\n"
                        + _stacks_of_hung(proc, stderr))
    finally:
        if proc.poll() is None:
            proc.kill()
    # it stopped on the interrupt with the sweep's own status and hint (Lightning's shutdown inside fit exits 1;
    # the runner turns that back into the interrupt), not killed by the signal; within the epoch it was in (at
    # most that one saved after the one read above), and the next model never started
    err = stderr.read_text(errors="replace")
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    assert "interrupted: finished records and the leaderboard" in err and "--resume" in err
    assert _saved_epoch(checkpoint) <= saved + 1
    assert not (out / "test_efficientnet").exists()
    baseline = json.loads((out / "prior-baseline" / "result.json").read_text())
    assert baseline["status"] == "ok"
    assert "| prior-baseline" in (out / "leaderboard.md").read_text()
    assert not (out / "test_resnet" / "result.json").exists()  # interrupted: no half record
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp"))
    assert (out / "test_resnet" / "run_config.json").exists()  # what --resume continues from


@pytest.mark.slow
def test_sigkill_then_resume_continues_from_the_checkpoint(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    cmd = _command(tiny_voc, out, "test_resnet", epochs=25)
    proc = _start(cmd, tmp_path)
    try:
        _wait_for(out / "test_resnet" / "checkpoints" / "last.ckpt", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "test_resnet" / "result.json").exists()
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr
    record = json.loads((out / "test_resnet" / "result.json").read_text())
    assert record["status"] == "ok" and record["config"]["epochs"] == 25


@pytest.mark.slow
def test_two_concurrent_sweeps_of_one_model_lose_no_record(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    first = _start(_command(tiny_voc, out, "test_resnet", epochs=100_000), tmp_path)  # holds test_resnet/
    try:
        _wait_for(out / "test_resnet" / "run_config.json", first)
        second = _start(_command(tiny_voc, out, "test_resnet", epochs=2), tmp_path)
        assert second.wait(timeout=300) == 0
        assert first.poll() is None  # still running: the folders were in use at the same time
    finally:
        first.kill()
        first.wait(timeout=60)
    record = json.loads((out / "test_resnet~2" / "result.json").read_text())
    assert record["status"] == "ok" and record["config"]["epochs"] == 2
    assert not (out / "test_resnet" / "result.json").exists()  # the first sweep's folder was left alone
    assert (out / "test_resnet" / "checkpoints" / "last.ckpt").exists()
    assert "| test_resnet " in (out / "leaderboard.md").read_text()
