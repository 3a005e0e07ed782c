"""The run store: records round-trip byte for byte and carry their schema version, the lock,
reading and writing run folders."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.store import (
    ABSENT,
    LABELS_FILE,
    PREDICTIONS_FILE,
    RESULT_FILE,
    SCHEMA_VERSION,
    Run,
    RunRecord,
    load_eval,
    locked,
    read_record,
    read_records,
    read_runs,
    run_dir_name,
    write_run,
)
from voc.constants import VOC_CLASSES
from voc.errors import VOCDataError
from voc.io import write_json_atomic
from voc.tables import class_table_csv

REPO = Path(__file__).resolve().parents[1]


def _metrics() -> dict:
    return {
        "accuracy": 0.9123,
        "mAP": 0.6003,
        "tail_accuracy": None,
        "tail_curve": {"thresholds": [0.5, 0.75], "values": [0.8, None]},
        "per_class": {c: {"ap": None if i == 3 else 0.5 + i / 100, "n_positive": 7} for i, c in enumerate(VOC_CLASSES)},
    }


def _model_run_json(peak_rss_mb: float | None = 812.4) -> dict:
    """A model's record as the runner writes it: the base record, ``config_hash`` set right after
    it, ``peak_rss_mb`` last."""
    return {
        "schema_version": 1,
        "model": "resnet18",
        "status": "ok",
        "error": None,
        "weights": "timm pretrained (resnet18.a1_in1k)",
        "dataset": {"kind": "voc", "root": "/data/voc", "year": "2012", "train_split": "train", "eval_split": "val",
                    "description": "VOC2012 train → val", "n_train_images": 5717, "n_eval_images": 5823},
        "config": {"name": "course", "epochs": 10, "seed": 0, "lr": 0.0001, "difficult": "negative"},
        "metrics": _metrics(),
        "throughput": {"train_images_per_s": 41.25, "eval_images_per_s": 160.0,
                       "measured": "steady state, end to end (data loading included), all processes"},
        "wall_time_s": {"setup": 1.5, "train": 1200.25, "eval": 30.0, "total": 1231.75},
        "params": 11_186_772,
        "environment": {"torch": "2.5.1", "accelerator": "cpu", "precision": "32-true"},
        "command": "python benchmark.py --models resnet18",
        "config_hash": "0123456789ab",
        "peak_rss_mb": peak_rss_mb,
    }


def _baseline_json() -> dict:
    """The label-prior baseline's record: the base record only, neither config_hash nor peak_rss_mb."""
    return {
        "schema_version": 1,
        "model": "prior-baseline",
        "status": "ok",
        "error": None,
        "weights": "train-split label priors",
        "dataset": {"kind": "synthetic", "root": "/tmp/synthetic", "year": "2012", "eval_split": "val",
                    "description": "synthetic"},
        "config": {"name": "course", "epochs": 0, "seed": 0},
        "metrics": _metrics(),
        "throughput": None,
        "wall_time_s": None,
        "params": 0,
        "environment": None,
        "command": None,
    }


def _today_bytes(data: dict) -> bytes:
    """What the runner writes for ``data`` (``json.dumps(indent=2) + "\\n"``)."""
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8")


@pytest.mark.parametrize(
    "data",
    [
        _model_run_json(),
        _model_run_json(peak_rss_mb=None),  # no /proc: written as null, which must stay
        _baseline_json(),
        {**_baseline_json(), "written_by_a_later_version": {"x": [1, 2]}},
    ],
    ids=["model-run", "model-run-no-rss", "baseline", "unknown-key"],
)
def test_record_round_trips_byte_identically(data: dict, tmp_path: Path) -> None:
    stored = tmp_path / RESULT_FILE
    stored.write_bytes(_today_bytes(data))
    record = RunRecord.from_dict(json.loads(stored.read_text(encoding="utf-8")))
    again = tmp_path / "again.json"
    write_json_atomic(again, record.to_dict())
    assert again.read_bytes() == stored.read_bytes()
    assert list(record.to_dict()) == list(data)


def test_record_fields_and_key_order() -> None:
    baseline = RunRecord.from_dict(_baseline_json())
    assert baseline.config_hash is ABSENT and baseline.peak_rss_mb is ABSENT
    run = RunRecord.from_dict(_model_run_json(peak_rss_mb=None))
    assert run.config_hash == "0123456789ab" and run.peak_rss_mb is None
    built = RunRecord(model="m", status="failed", config_hash="h", peak_rss_mb=1.0, extra={"note": "x"})
    assert list(built.to_dict()) == [
        "schema_version", "model", "status", "error", "weights", "dataset", "config", "metrics", "throughput",
        "wall_time_s", "params", "environment", "command", "config_hash", "peak_rss_mb", "note",
    ]
    assert "config_hash" not in RunRecord(model="m", status="failed").to_dict()


@pytest.mark.parametrize("key", ["model", "status", "error", "dataset", "config", "metrics", "command"])
def test_from_dict_needs_every_key_a_record_has(key: str) -> None:
    data = _baseline_json()
    del data[key]
    with pytest.raises(VOCDataError, match=rf"r.json: a run record of schema_version 1 .* lacks \['{key}'\]"):
        RunRecord.from_dict(data, "r.json")
    with pytest.raises(VOCDataError, match=r"r.json: not a voc-bench run record \(a JSON list, not an object\)"):
        RunRecord.from_dict([1, 2], "r.json")


@pytest.mark.parametrize("section, key", [("config", "name"), ("config", "seed"), ("dataset", "description"),
                                          ("dataset", "root"), ("dataset", "year"), ("dataset", "eval_split")])
def test_from_dict_needs_the_config_and_dataset_keys_the_report_reads(section: str, key: str) -> None:
    data = _baseline_json()
    RunRecord.from_dict(data, "r.json")  # complete, it reads
    del data[section][key]
    with pytest.raises(VOCDataError, match=rf"r.json: .* lacks \['{section}.{key}'\]"):
        RunRecord.from_dict(data, "r.json")


def test_a_written_record_carries_schema_version_1_first(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 1
    dataset = {"description": "VOC2012 train → val", "root": "/voc", "year": "2012", "eval_split": "val"}
    write_run(tmp_path, RunRecord(model="m", status="failed", error="boom", config={"name": "course", "seed": 0},
                                  dataset=dataset))
    text = (tmp_path / RESULT_FILE).read_text(encoding="utf-8")
    assert text.startswith('{\n  "schema_version": 1,\n  "model": "m",\n')
    assert list(json.loads(text)) == ["schema_version", *list(_baseline_json())[1:]]
    # read back and written again: the same bytes
    again = tmp_path / "again"
    write_run(again, read_record(tmp_path))
    assert (again / RESULT_FILE).read_bytes() == (tmp_path / RESULT_FILE).read_bytes()


def _without_version() -> dict:
    data = _baseline_json()
    del data["schema_version"]
    return data


@pytest.mark.parametrize(
    ("data", "problem", "fix"),
    [
        (_without_version(), "no schema_version: not a voc-bench run record", "Move it out of the results folder"),
        ({**_baseline_json(), "schema_version": 99},
         "schema_version 99, but this voc-bench reads records up to schema_version 1: the record was written by a "
         "newer voc-bench", "Upgrade voc-bench"),
        ({**_baseline_json(), "schema_version": "1"}, "schema_version '1' is not one voc-bench writes",
         "Move it out of the results folder"),
        ({**_baseline_json(), "schema_version": 0}, "schema_version 0 is not one voc-bench writes",
         "Move it out of the results folder"),
    ],
    ids=["missing", "newer", "string", "zero"],
)
def test_a_record_without_a_readable_schema_version_is_refused_naming_the_file(
    data: dict, problem: str, fix: str, tmp_path: Path
) -> None:
    path = tmp_path / "m" / RESULT_FILE
    write_json_atomic(path, data)
    for read in (lambda: read_runs(tmp_path), lambda: read_record(path.parent)):
        with pytest.raises(VOCDataError) as err:
            read()
        assert str(err.value).startswith(f"{path}: {problem}") and fix in str(err.value)
    with pytest.raises(VOCDataError, match=problem):
        RunRecord.from_dict(data)


def test_typed_accessors() -> None:
    record = RunRecord.from_dict(_model_run_json())
    assert record.ok and record.protocol == "course" and record.seed == 0 and record.epochs == 10
    assert record.metric("mAP") == 0.6003 and record.metric("tail_accuracy") is None and record.metric("nope") is None
    assert record.throughput_value("train_images_per_s") == 41.25
    ap = record.per_class_ap
    assert list(ap) == list(VOC_CLASSES) and ap[VOC_CLASSES[3]] is None and ap["aeroplane"] == 0.5
    assert record.tail_curve == {"thresholds": [0.5, 0.75], "values": [0.8, None]}
    assert record.data_description == "VOC2012 train → val" and record.year == "2012" and record.eval_split == "val"
    failed = RunRecord(model="m", status="failed", error="boom")
    assert not failed.ok and failed.metric("mAP") is None and failed.per_class_ap == {}
    assert failed.throughput_value("train_images_per_s") is None and failed.tail_curve is None


def test_run_dir_name() -> None:
    assert run_dir_name("resnet50") == "resnet50"
    assert run_dir_name("hf-hub:org/model", seed=2) == "hf-hub_org_model-seed2"


_HOLDER = """
import sys
from bench.store import locked
with locked(sys.argv[1]) as held:
    print("held" if held else "not held", flush=True)
    sys.stdin.readline()
"""


def test_locked_without_waiting_reports_a_lock_held_elsewhere(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with locked(lock, wait=False) as held:
            assert held is False
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(30)
    assert holder.returncode == 0
    with locked(lock, wait=False) as held:  # released when the holder's block ended
        assert held is True
    with locked(lock) as held:  # and released on exit here too
        assert held is True


def test_locked_releases_on_an_exception(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    with pytest.raises(RuntimeError), locked(lock):
        raise RuntimeError("boom")
    out = subprocess.run(
        [sys.executable, "-c", _HOLDER, str(lock)], cwd=REPO, input="\n", capture_output=True, text=True, timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "held"


def _write_ok(out: Path, model: str) -> None:
    write_run(out / model, RunRecord.from_dict({**_baseline_json(), "model": model}))


def test_read_runs_skips_records_cut_short_naming_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_ok(tmp_path, "b")
    _write_ok(tmp_path, "a")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / RESULT_FILE).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="bench.store"):
        runs = read_runs(tmp_path)
    assert [run.dir.name for run in runs] == ["a", "b"]
    assert all(isinstance(run.record, RunRecord) for run in runs)
    assert [r.model for r in read_records(tmp_path)] == ["a", "b"]
    assert f"skipping {tmp_path / 'broken' / RESULT_FILE}: not a readable result" in caplog.text


def test_read_runs_refuses_a_json_file_that_is_not_a_record(tmp_path: Path) -> None:
    _write_ok(tmp_path, "a")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / RESULT_FILE).write_text('{"name": "not ours"}')
    with pytest.raises(VOCDataError, match=f"^{tmp_path / 'foreign' / RESULT_FILE}: no schema_version"):
        read_runs(tmp_path)


def test_read_record(tmp_path: Path) -> None:
    assert read_record(tmp_path / "nothing") is None
    _write_ok(tmp_path, "a")
    record = read_record(tmp_path / "a")
    assert record is not None and record.model == "a" and record.ok
    (tmp_path / "a" / RESULT_FILE).write_text("{cut short")
    assert read_record(tmp_path / "a") is None


def test_write_run_writes_all_three_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "out" / "m"
    ids = ["img2", "img1"]
    scores = np.array([[0.25] * 20, [0.75] * 20])
    labels = np.array([[1.0] * 20, [-1.0] * 20])
    record = RunRecord(model="m", status="ok", metrics=_metrics(), config_hash="h", peak_rss_mb=None)
    write_run(run_dir, record, ids, scores, labels)
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([LABELS_FILE, PREDICTIONS_FILE, RESULT_FILE])
    assert (run_dir / PREDICTIONS_FILE).read_text() == class_table_csv(ids, scores)
    assert (run_dir / LABELS_FILE).read_text().splitlines()[1] == "img2," + ",".join(["1"] * 20)  # integers
    assert (run_dir / RESULT_FILE).read_bytes() == _today_bytes(record.to_dict())
    data = load_eval(Run(run_dir, record))
    assert data.ids == ("img1", "img2") and data.labels[0, 0] == -1 and data.scores[1, 0] == 0.25
    (run_dir / LABELS_FILE).unlink()  # every run folder has its labels: none is refused, naming the file
    with pytest.raises(VOCDataError, match=f"^{run_dir / LABELS_FILE}: labels file not found"):
        load_eval(Run(run_dir, record))


def test_write_run_without_predictions_writes_the_record_only(tmp_path: Path) -> None:
    write_run(tmp_path, RunRecord(model="m", status="failed", error="boom"), ids=["a"], scores=None, labels=None)
    assert [p.name for p in tmp_path.iterdir()] == [RESULT_FILE]


def test_write_run_is_atomic_a_failed_write_leaves_the_old_files(tmp_path: Path) -> None:
    write_run(tmp_path, RunRecord(model="m", status="ok", metrics={"mAP": 0.5}))
    before = (tmp_path / RESULT_FILE).read_bytes()
    with pytest.raises(ValueError):  # NaN is refused before anything is written
        write_run(tmp_path, RunRecord(model="m", status="ok", metrics={"mAP": float("nan")}))
    assert (tmp_path / RESULT_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [RESULT_FILE]  # no temp file left behind


def test_each_protocol_but_the_course_has_its_own_run_folders() -> None:
    from bench.store import protocol_run_dir_name

    assert protocol_run_dir_name("resnet50", 0, "course") == "resnet50"
    assert protocol_run_dir_name("resnet50", 0, "modern") == "resnet50-modern"
    assert protocol_run_dir_name("vit/tiny", 2, "linear") == "vit_tiny-seed2-linear"
    assert protocol_run_dir_name("prior-baseline", 0, "voc07") == "prior-baseline-voc07"
