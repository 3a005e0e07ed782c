"""Per-epoch learning curves: read from each run's Lightning CSV log, drawn in the report, absent
(without a trace in report.md) where no run has a log."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from bench.report.curves import LearningCurve, read_learning_curve
from bench.report.markdown import write_report
from bench.report.plots import learning_curves_figure
from bench.store import LOG_DIR, METRICS_LOG, REPORT_DIR, REPORT_MD, RunRecord, run_dir_name, write_run
from voc.labels import load_labels
from voc.metrics import evaluate

# as Lightning's CSVLogger writes it: step rows, an epoch row, a validation row; epoch 1 logged twice
# (a run resumed from its epoch-1 checkpoint logs that epoch again: the last value is the run's)
LOG = """epoch,step,train_loss_step,train_loss_epoch,val_mAP,val_ema_mAP
0,9,0.9,,,
0,19,,0.8,,
0,19,,,0.30,0.25
1,39,,0.6,,
1,39,,,0.45,0.40
1,39,,0.55,,
2,59,,0.5,,
"""


def _write_log(run_dir: Path, text: str) -> None:
    (run_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
    (run_dir / LOG_DIR / METRICS_LOG).write_text(text, encoding="utf-8")


def test_curve_is_read_per_epoch_counted_from_one(tmp_path: Path) -> None:
    _write_log(tmp_path, LOG)
    curve = read_learning_curve(tmp_path, "m")
    assert curve == LearningCurve(
        name="m",
        loss_epochs=(1, 2, 3),
        train_loss=(0.8, 0.55, 0.5),
        eval_epochs=(1, 2),
        eval_map=(0.30, 0.45),
        ema_eval_map=(0.25, 0.40),
    )


def test_curve_without_eval_or_ema(tmp_path: Path) -> None:
    _write_log(tmp_path, "epoch,step,train_loss_epoch\n0,3,0.7\n1,7,0.6\n")
    curve = read_learning_curve(tmp_path, "m")
    assert curve is not None and curve.train_loss == (0.7, 0.6) and not curve.has_eval
    assert curve.ema_eval_map == ()
    _write_log(tmp_path, "epoch,step,train_loss_epoch,val_mAP\n0,3,0.7,\n0,3,,0.2\n")
    assert read_learning_curve(tmp_path, "m").ema_eval_map == ()  # raw only: no EMA was kept


def test_absent_or_unreadable_logs_give_no_curve(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert read_learning_curve(tmp_path, "m") is None
    _write_log(tmp_path, "epoch,step,train_loss_step\n0,9,0.9\n")  # no per-epoch value
    assert read_learning_curve(tmp_path, "m") is None
    _write_log(tmp_path, "epoch,step\n0,1\n0,1,2,3,4\n")  # ragged
    with caplog.at_level(logging.WARNING):
        assert read_learning_curve(tmp_path, "m") is None
    assert METRICS_LOG in caplog.text


def test_figure_has_an_eval_panel_only_where_a_run_logged_eval_map() -> None:
    loss_only = LearningCurve("a", (1, 2), (0.7, 0.6), (), (), ())
    figure = learning_curves_figure([loss_only])
    assert len(figure.axes) == 1 and len(figure.axes[0].lines) == 1
    with_eval = LearningCurve("b", (1, 2), (0.8, 0.5), (1, 2), (0.3, 0.4), (0.2, 0.35))
    figure = learning_curves_figure([loss_only, with_eval])
    loss_ax, map_ax = figure.axes
    assert len(loss_ax.lines) == 2
    assert [line.get_linestyle() for line in map_ax.lines] == ["-", "--"]  # raw, then its EMA
    np.testing.assert_allclose(map_ax.lines[1].get_ydata(), [0.2, 0.35])


def _store_run(out: Path, voc_root: Path, model: str) -> Path:
    ids, labels = load_labels(voc_root, "2012", "val")
    scores = np.random.default_rng(0).random(labels.shape)
    record = RunRecord(
        model=model, status="ok", weights="random init",
        dataset={"root": str(voc_root), "year": "2012", "eval_split": "val", "description": "tiny VOC2012 val"},
        config={"name": "course", "epochs": 3, "seed": 0}, metrics=evaluate(scores, labels),
        throughput={"train_images_per_s": 10.0, "eval_images_per_s": 40.0}, params=1000,
    )
    run_dir = out / run_dir_name(model)
    write_run(run_dir, record, ids, scores, labels)
    return run_dir


@pytest.mark.slow
def test_report_draws_the_runs_with_logs_and_names_the_others(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    _write_log(_store_run(out, tiny_voc, "logged"), LOG)
    _store_run(out, tiny_voc, "unlogged")
    md = write_report(out).read_text(encoding="utf-8")
    assert "## Learning curves" in md
    assert "No curve for unlogged: no log in its run folder" in md
    assert (out / REPORT_DIR / "learning_curves.png").is_file()
    assert f"]({REPORT_DIR}/learning_curves.png)" in md


@pytest.mark.slow
def test_report_without_any_log_has_no_learning_curve_section(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    _store_run(out, tiny_voc, "a")
    _store_run(out, tiny_voc, "b")
    write_report(out)
    assert "Learning curves" not in (out / REPORT_MD).read_text(encoding="utf-8")
    assert not (out / REPORT_DIR / "learning_curves.png").exists()
