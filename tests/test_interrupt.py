"""Ctrl-C (SIGINT) stops a sweep within seconds and keeps finished records and a valid leaderboard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sigint_keeps_finished_records_and_leaderboard(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    cmd = [
        sys.executable, str(ROOT / "benchmark.py"), "--models", "test_resnet", "test_efficientnet", "--data", str(tiny_voc),
        "--out", str(out), "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", "1000",
        "--pretrained", "none", "--num-workers", "0",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        checkpoint = out / "test_resnet" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert checkpoint.exists(), "the run never reached its first checkpoint"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        proc.wait(timeout=30)
        assert time.monotonic() - sent < 15
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    baseline = json.loads((out / "prior-baseline" / "result.json").read_text())
    assert baseline["status"] == "ok"
    assert "| prior-baseline" in (out / "leaderboard.md").read_text()
    assert not (out / "test_resnet" / "result.json").exists()  # interrupted: no half record
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp"))
    assert (out / "test_resnet" / "run_config.json").exists()  # what --resume continues from


def test_sigkill_then_resume_continues_from_the_checkpoint(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    cmd = [
        sys.executable, str(ROOT / "benchmark.py"), "--models", "test_resnet", "--data", str(tiny_voc),
        "--out", str(out), "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", "25",
        "--pretrained", "none", "--num-workers", "0", "--no-baseline",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    try:
        checkpoint = out / "test_resnet" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert checkpoint.exists() and proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "test_resnet" / "result.json").exists()
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr
    record = json.loads((out / "test_resnet" / "result.json").read_text())
    assert record["status"] == "ok" and record["config"]["epochs"] == 25


def test_two_concurrent_sweeps_of_one_model_lose_no_record(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"

    def sweep(epochs: int) -> subprocess.Popen:
        cmd = [
            sys.executable, str(ROOT / "benchmark.py"), "--models", "test_resnet", "--data", str(tiny_voc),
            "--out", str(out), "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", str(epochs),
            "--pretrained", "none", "--num-workers", "0", "--no-baseline",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)

    first = sweep(100_000)  # holds test_resnet/ until this test ends it
    claimed = out / "test_resnet" / "run_config.json"
    try:
        deadline = time.monotonic() + 120
        while not claimed.exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert claimed.exists() and first.poll() is None
        second = sweep(2)
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
