"""Fine-tuning recipes end to end: ``--protocol course`` is the default, the reported model is the
declared one, and ``--eval-every`` logs a learning curve without touching the result."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.store import LEADERBOARD_CSV
from voc.cli import main as voc_main
from voc.module import SCALAR_METRICS

QUICK = [
    "--models", "test_resnet", "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", "1",
    "--pretrained", "none", "--num-workers", "0", "--no-report", "--no-baseline",
]


def _record(out: Path, folder: str = "test_resnet") -> dict:
    return json.loads((out / folder / "result.json").read_text())


def test_protocol_course_is_bit_identical_to_the_default(tiny_voc: Path, tmp_path: Path) -> None:
    assert main([*QUICK, "--data", str(tiny_voc), "--out", str(tmp_path / "default")]) == 0
    assert main([*QUICK, "--protocol", "course", "--data", str(tiny_voc), "--out", str(tmp_path / "course")]) == 0
    default, course = _record(tmp_path / "default"), _record(tmp_path / "course")
    assert default["status"] == course["status"] == "ok"
    assert course["metrics"] == default["metrics"]  # every number, to the last bit
    assert course["config"] == default["config"] and course["config_hash"] == default["config_hash"]
    assert course["config"]["name"] == "course" and "scheduler" not in course["config"]  # recorded as before
    assert "eval_models" not in course  # no EMA: one model evaluated


def test_reported_model_is_the_declared_one_and_the_other_is_recorded_beside_it(
    tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    # an EMA of decay 0.2 over 3 steps (0.008 of it the initial weights: it may be reported), declared reported
    args = [*QUICK, "--data", str(tiny_voc), "--out", str(out), "--ema-decay", "0.2", "--report-model", "ema",
            "--lr", "0.01", "--scheduler", "cosine", "--warmup", "0.25", "--optimizer", "adamw",
            "--weight-decay", "0.05", "--augment", "randaugment", "--erasing", "0.5", "--batch-size", "8"]
    assert main(args) == 0
    record = _record(out)
    assert record["status"] == "ok", record["error"]
    models = record["eval_models"]
    assert models["reported"] == "ema" and set(models) == {"reported", "raw", "ema", "ema_run"}
    assert models["ema_run"]["initial_weight_share"] == pytest.approx(0.2**3)  # 20 images, batch 8
    assert models["ema"] != models["raw"]  # on 7 eval images mAP may tie; accuracy does not
    assert {key: record["metrics"][key] for key in SCALAR_METRICS} == models["ema"]
    config = record["config"]
    assert (config["ema_decay"], config["report_model"], config["scheduler"], config["augment"]) == (
        0.2, "ema", "cosine", "randaugment"
    )
    # predictions.csv holds the reported model's scores: re-scoring them gives the record's metrics
    capsys.readouterr()
    run = out / "test_resnet"
    assert voc_main(["evaluate", "--scores", str(run / "predictions.csv"), "--labels", str(run / "labels.csv")]) == 0
    assert json.loads(capsys.readouterr().out) == record["metrics"]
    with open(out / LEADERBOARD_CSV, encoding="utf-8") as f:
        rows = {row["model"]: row for row in csv.DictReader(f)}
    assert float(rows["test_resnet"]["accuracy"]) == pytest.approx(models["ema"]["accuracy"])


def test_eval_every_logs_a_learning_curve_and_leaves_the_result_alone(tiny_voc: Path, tmp_path: Path) -> None:
    base = [*QUICK, "--data", str(tiny_voc), "--epochs", "2", "--ema-decay", "0.5"]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert main([*base, "--out", str(tmp_path / "curve"), "--eval-every", "1"]) == 0
    plain, curve = _record(tmp_path / "plain"), _record(tmp_path / "curve")
    assert curve["metrics"] == plain["metrics"] and curve["eval_models"] == plain["eval_models"]
    assert curve["config_hash"] == plain["config_hash"]  # a logging option, not part of the protocol
    with open(tmp_path / "curve" / "test_resnet" / "logs" / "metrics.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_epoch = {int(r["epoch"]): r for r in rows if r.get("val_mAP")}
    assert sorted(by_epoch) == [0, 1]
    assert all(r["val_ema_mAP"] for r in by_epoch.values())
    assert sorted({int(r["epoch"]) for r in rows if r.get("train_loss_epoch")}) == [0, 1]
    # the final epoch's validation is the final model: the same mAP the record reports
    assert float(by_epoch[1]["val_mAP"]) == pytest.approx(plain["eval_models"]["raw"]["mAP"])
    with open(tmp_path / "plain" / "test_resnet" / "logs" / "metrics.csv", encoding="utf-8") as f:
        assert not any(r.get("val_mAP") for r in csv.DictReader(f))


@pytest.mark.parametrize("name", ["voc07", "modern"])
def test_named_protocols_run_end_to_end(name: str, tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / name
    args = [*QUICK, "--protocol", name, "--data", str(tiny_voc), "--out", str(out), "--batch-size", "4",
            "--eval-batch-size", "8", "--year", "2012", "--train-split", "train", "--eval-split", "val"]
    assert main(args) == 0
    # runs of a protocol other than the course's have their own folders: a course sweep into the same
    # --out keeps its own
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) == [f"test_resnet-{name}"]
    record = _record(out, f"test_resnet-{name}")
    assert record["status"] == "ok", record["error"]
    config = record["config"]
    assert config["name"] == name and config["epochs"] == 1  # the flags won, the rest is the recipe's
    if name == "voc07":
        assert (config["loss"], config["scheduler"], config["schedule_scale"]) == ("asl", "onecycle", 2.0)
    assert record["eval_models"]["reported"] == config["report_model"]
