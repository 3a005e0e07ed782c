"""``scripts/gpu_check.sh`` (the GPU acceptance check) runs end to end in its quick mode on the CPU:
every step OK, the two deterministic runs MATCH, and the summary table names each step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("synthetic set", "speed course shapes", "speed --protocol linear", "speed linear, nvJPEG",
         "train 2 epochs bf16", "deterministic x2")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_quick_mode_runs_every_step(tmp_path: Path) -> None:
    env = {**os.environ, "GPU_CHECK_QUICK": "1", "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=600)
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert done.returncode == 0, summary + done.stdout[-3000:] + done.stderr[-3000:]
    rows = {line[:24].strip(): line[25:34].strip() for line in summary.splitlines()[3:] if line.strip()}
    for step in STEPS:
        assert rows.get(step) == "OK", summary
    assert "MATCH" in summary
    assert (tmp_path / "out" / "speed-linear-device" / "speed.json").is_file()
