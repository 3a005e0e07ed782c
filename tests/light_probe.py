"""The light paths' probe: run some code in a fresh interpreter and report which heavy modules (the
training stack) it loaded. One probe for every test that checks a path stays torch-free.

``probe(code, *args)`` runs ``code`` as ``python -c code args`` would (``sys.argv[1:]`` is ``args``;
this checkout first on the path), catches its ``SystemExit``, and returns the process with the exit
code and the heavy modules loaded at the end. The result goes through a file, so the code's stdout
and stderr are its own. ``BENCHMARK`` is the code of ``python benchmark.py ARGS``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "pytorch_lightning", "lightning", "timm")
"""The training stack: seconds to import, which the light paths must not."""

BENCHMARK = f"""
import runpy, sys
sys.argv = ["benchmark.py", *sys.argv[1:]]
runpy.run_path({str(ROOT / "benchmark.py")!r}, run_name="__main__")
"""
"""``python benchmark.py ARGS``, for :func:`probe`."""

_WRAPPER = """
import json, os, sys
code = 0
try:
    exec(compile(os.environ["LIGHT_PROBE_CODE"], "<probe>", "exec"), {"__name__": "__main__"})
except SystemExit as exit:
    code = exit.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(os.environ["LIGHT_PROBE_HEAVY"])))
with open(os.environ["LIGHT_PROBE_OUT"], "w", encoding="utf-8") as fh:
    json.dump({"code": code, "heavy": heavy}, fh)
"""


@dataclass(frozen=True)
class Probe:
    proc: subprocess.CompletedProcess
    code: int | str | None
    """The code's exit status (0 when it ran to its end)."""
    heavy: list[str]
    """The modules of :data:`HEAVY` loaded when it ended, sorted."""


def probe(code: str, *args: str, cwd: Path | None = None, timeout: float = 300) -> Probe:
    """``code`` run as ``python -c code args``; fails (with its stderr) if it raised anything but SystemExit."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LIGHT_PROBE_CODE": code, "LIGHT_PROBE_OUT": str(out),
               "LIGHT_PROBE_HEAVY": json.dumps(HEAVY)}
        proc = subprocess.run([sys.executable, "-c", _WRAPPER, *args], capture_output=True, text=True, env=env,
                              cwd=cwd, timeout=timeout, check=False)
        assert out.is_file(), f"the probed code did not finish:\n{proc.stderr[-3000:]}"
        result = json.loads(out.read_text(encoding="utf-8"))
    return Probe(proc, result["code"], result["heavy"])
