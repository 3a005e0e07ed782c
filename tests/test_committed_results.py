"""The committed results in ``results/`` can be rebuilt and re-scored from a clean clone.

``python benchmark.py --report-only --out results`` must give byte-identical ``leaderboard.md``,
``leaderboard.csv``, ``report.md`` and figures, and ``python -m voc evaluate`` on every run's
``predictions.csv`` and ``labels.csv`` must give exactly the metrics its ``result.json`` records.
"""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main as benchmark_main
from bench.data import SYNTHETIC_ROOT, SYNTHETIC_SIZE
from bench.store import (
    LABELS_FILE,
    LEADERBOARD_CSV,
    LEADERBOARD_MD,
    LOG_DIR,
    METRICS_LOG,
    PREDICTIONS_FILE,
    REPORT_DIR,
    REPORT_MD,
    RESULT_FILE,
)
from voc.cli import main as voc_main
from voc.synthetic import generate_synthetic_voc

RESULTS = Path(__file__).resolve().parents[1] / "results"
RUN_FILES = (RESULT_FILE, PREDICTIONS_FILE, LABELS_FILE)
COMMITTED_RUNS = sorted(p.parent for p in RESULTS.glob(f"*/{RESULT_FILE}"))


def _copy_runs(source: Path, target: Path) -> None:
    """Only what is committed of each run: its record, predictions and labels, and its training log
    (the learning curves) where it has one."""
    for run in sorted(p.parent for p in source.glob(f"*/{RESULT_FILE}")):
        (target / run.name / LOG_DIR).mkdir(parents=True)
        for name in (*RUN_FILES, f"{LOG_DIR}/{METRICS_LOG}"):
            if (run / name).is_file():
                shutil.copy2(run / name, target / run.name / name)


def test_results_hold_committed_runs() -> None:
    assert len(COMMITTED_RUNS) >= 2, f"no committed runs under {RESULTS}"
    for run in COMMITTED_RUNS:
        for name in RUN_FILES:
            assert (run / name).is_file(), f"{run / name} is not committed"


@pytest.mark.parametrize("run", COMMITTED_RUNS, ids=lambda p: p.name)
def test_voc_evaluate_gives_the_recorded_metrics(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads((run / RESULT_FILE).read_text(encoding="utf-8"))
    assert voc_main(["evaluate", "--scores", str(run / PREDICTIONS_FILE), "--labels", str(run / LABELS_FILE)]) == 0
    assert json.loads(capsys.readouterr().out) == record["metrics"]


def test_report_only_rebuilds_the_committed_files_byte_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the galleries read the eval images from the runs' VOC tree: the synthetic set, regenerated
    generate_synthetic_voc(tmp_path / SYNTHETIC_ROOT, SYNTHETIC_SIZE["n_train"], SYNTHETIC_SIZE["n_val"],
                           seed=SYNTHETIC_SIZE["seed"], workers=2)
    _copy_runs(RESULTS, tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    assert benchmark_main(["--report-only", "--out", "results"]) == 0
    capsys.readouterr()
    rebuilt = tmp_path / "results"
    for name in (LEADERBOARD_MD, LEADERBOARD_CSV, REPORT_MD):
        assert (rebuilt / name).read_bytes() == (RESULTS / name).read_bytes(), f"{name} differs when rebuilt"
    comparison = filecmp.dircmp(RESULTS / REPORT_DIR, rebuilt / REPORT_DIR)
    _assert_same_tree(comparison)


def _assert_same_tree(comparison: filecmp.dircmp) -> None:
    assert not comparison.left_only and not comparison.right_only, (comparison.left_only, comparison.right_only)
    _, mismatch, errors = filecmp.cmpfiles(comparison.left, comparison.right, comparison.common_files, shallow=False)
    assert not mismatch and not errors, f"{comparison.left}: {mismatch or errors} differ when rebuilt"
    for sub in comparison.subdirs.values():
        _assert_same_tree(sub)
