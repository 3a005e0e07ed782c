"""The committed results can be rebuilt and re-scored from a clean clone.

Each results folder (``results/``, the synthetic set's, and ``results/voc07-real-dev/``, real
photos) is checked: ``python benchmark.py --report-only --out FOLDER`` must give byte-identical
``leaderboard.md``, ``leaderboard.csv``, ``report.md`` and figures, also in a clone without any
VOC data (the galleries are then kept as committed), and ``python -m voc evaluate`` on every run's
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
FOLDERS = (RESULTS, RESULTS / "voc07-real-dev")
"""Every committed results folder: each has its own runs, leaderboard and report."""
RUN_FILES = (RESULT_FILE, PREDICTIONS_FILE, LABELS_FILE)
COMMITTED_RUNS = sorted(p.parent for folder in FOLDERS for p in folder.glob(f"*/{RESULT_FILE}"))


def _copy_runs(source: Path, target: Path) -> None:
    """Only what is committed of each run: its record, predictions and labels, and its training log
    (the learning curves) where it has one."""
    for run in sorted(p.parent for p in source.glob(f"*/{RESULT_FILE}")):
        (target / run.name / LOG_DIR).mkdir(parents=True)
        for name in (*RUN_FILES, f"{LOG_DIR}/{METRICS_LOG}"):
            if (run / name).is_file():
                shutil.copy2(run / name, target / run.name / name)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_results_hold_committed_runs(folder: Path) -> None:
    runs = [run for run in COMMITTED_RUNS if run.parent == folder]
    assert len(runs) >= 2, f"no committed runs under {folder}"
    for run in runs:
        for name in RUN_FILES:
            assert (run / name).is_file(), f"{run / name} is not committed"


@pytest.mark.parametrize("run", COMMITTED_RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_voc_evaluate_gives_the_recorded_metrics(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads((run / RESULT_FILE).read_text(encoding="utf-8"))
    assert voc_main(["evaluate", "--scores", str(run / PREDICTIONS_FILE), "--labels", str(run / LABELS_FILE)]) == 0
    assert json.loads(capsys.readouterr().out) == record["metrics"]


def _rebuild(committed: Path, rebuilt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert benchmark_main(["--report-only", "--out", str(rebuilt)]) == 0
    capsys.readouterr()
    for name in (LEADERBOARD_MD, LEADERBOARD_CSV, REPORT_MD):
        assert (rebuilt / name).read_bytes() == (committed / name).read_bytes(), f"{name} differs when rebuilt"
    _assert_same_tree(filecmp.dircmp(committed / REPORT_DIR, rebuilt / REPORT_DIR))


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_a_clone_without_data_rebuilds_the_committed_files_byte_identically(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # what a fresh clone has: the runs and the report as committed, no VOC tree (the runs' roots are relative)
    clone = tmp_path / "clone"
    _copy_runs(folder, clone / "results")
    shutil.copytree(folder / REPORT_DIR, clone / "results" / REPORT_DIR)
    monkeypatch.chdir(clone)
    _rebuild(folder, clone / "results", capsys)
    # committed galleries (of the synthetic set) are kept; a folder of real photos commits none
    has_galleries = any((folder / REPORT_DIR).rglob("gallery"))
    assert ("kept as it was" in caplog.text) is has_galleries


def test_report_only_redraws_the_galleries_from_the_synthetic_set_byte_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the galleries read the eval images from the runs' VOC tree: the synthetic set, regenerated
    generate_synthetic_voc(tmp_path / SYNTHETIC_ROOT, SYNTHETIC_SIZE["n_train"], SYNTHETIC_SIZE["n_val"],
                           seed=SYNTHETIC_SIZE["seed"], workers=2)
    _copy_runs(RESULTS, tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    _rebuild(RESULTS, tmp_path / "results", capsys)


def _assert_same_tree(comparison: filecmp.dircmp) -> None:
    assert not comparison.left_only and not comparison.right_only, (comparison.left_only, comparison.right_only)
    _, mismatch, errors = filecmp.cmpfiles(comparison.left, comparison.right, comparison.common_files, shallow=False)
    assert not mismatch and not errors, f"{comparison.left}: {mismatch or errors} differ when rebuilt"
    for sub in comparison.subdirs.values():
        _assert_same_tree(sub)
