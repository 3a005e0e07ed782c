"""``bench.run`` / ``bench.leaderboard``: the Python entry points give what the command line gives."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import bench
from bench.cli import main
from bench.data import DataSource
from bench.protocols import frozen_spec
from bench.protocols.finetune import COURSE_PROTOCOL
from bench.protocols.settings import FrozenProtocol
from bench.store import LEADERBOARD_CSV, PREDICTIONS_FILE, RESULT_FILE
from bench.train.experiment import TrainerOptions


def test_run_with_a_protocol_object_gives_the_command_lines_predictions(tiny_voc: Path, tmp_path: Path) -> None:
    protocol = replace(COURSE_PROTOCOL, resize=32, crop=32, crop_mode="full", epochs=1, batch_size=4,
                       eval_batch_size=8)
    records = bench.run(protocol, ["test_resnet"], data=DataSource(root=tiny_voc), out=tmp_path / "api",
                        pretrained="none", options=TrainerOptions(num_workers=0), baseline=False)
    assert [(r.model, r.status) for r in records] == [("test_resnet", "ok")]
    assert main(["--models", "test_resnet", "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", "1",
                 "--batch-size", "4", "--eval-batch-size", "8", "--pretrained", "none", "--num-workers", "0",
                 "--no-report", "--no-baseline", "--data", str(tiny_voc), "--out", str(tmp_path / "cli")]) == 0
    api_run, cli_run = (tmp_path / side / "test_resnet" for side in ("api", "cli"))
    assert (api_run / PREDICTIONS_FILE).read_bytes() == (cli_run / PREDICTIONS_FILE).read_bytes()
    # and the leaderboard as a DataFrame is leaderboard.csv's rows, rebuilt without writing anything
    frame = bench.leaderboard(tmp_path / "api")
    written = pd.read_csv(tmp_path / "api" / LEADERBOARD_CSV)
    assert list(frame.columns) == list(written.columns)
    assert frame["model"].tolist() == ["test_resnet"]
    assert frame["mAP"].iloc[0] == pytest.approx(records[0].metrics["mAP"])


def test_run_by_name_picks_the_frozen_protocol_and_its_runner(tiny_voc: Path, tmp_path: Path) -> None:
    protocol = replace(frozen_spec("knn").default(True), resize=32, crop=32)
    assert isinstance(protocol, FrozenProtocol)
    records = bench.run(protocol, ["test_resnet"], data=tiny_voc, out=tmp_path, pretrained="none", baseline=False)
    assert [(r.model, r.status) for r in records] == [("test_resnet", "ok")]
    assert (tmp_path / "test_resnet-knn" / RESULT_FILE).is_file()
    with pytest.raises(ValueError, match=r"unknown protocol 'nope'; valid values are"):
        bench.run("nope", ["test_resnet"], data=tiny_voc, out=tmp_path, pretrained="none")


def test_protocol_settings_are_the_registered_defaults() -> None:
    from bench.protocols.finetune import CPU_LPFT_PROTOCOL, LPFT_PROTOCOL
    from bench.protocols.linear import LinearProtocol

    assert bench.protocol_settings("lpft") == LPFT_PROTOCOL
    assert bench.protocol_settings("lpft", synthetic=True) == CPU_LPFT_PROTOCOL
    linear = bench.protocol_settings("linear", synthetic=True)
    assert isinstance(linear, LinearProtocol) and (linear.year, linear.eval_split) == ("2012", "val")
    with pytest.raises(ValueError, match=r"unknown protocol 'lp'; valid values are \['course'"):
        bench.protocol_settings("lp")


def test_the_command_line_runs_the_plan_it_builds_through_bench_api_sweep(
    tiny_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.api

    calls = []
    real_sweep = bench.api.sweep

    def spy(planned: bench.api.Plan, out: Path, **kwargs: object) -> list:
        calls.append((planned, out, kwargs))
        return real_sweep(planned, out, **kwargs)

    monkeypatch.setattr(bench.api, "sweep", spy)
    assert main(["--protocol", "knn", "--models", "test_resnet", "--resize", "32", "--pretrained", "none",
                 "--year", "2012", "--train-split", "train", "--eval-split", "val", "--no-report", "--no-baseline",
                 "--data", str(tiny_voc), "--out", str(tmp_path)]) == 0
    [(planned, out, kwargs)] = calls
    assert planned.models == ["test_resnet"] and planned.protocol == replace(
        frozen_spec("knn").default(False), year="2012", train_split="train", eval_split="val", resize=32)
    assert planned.sizes == {"train": 20, "val": 7} and out == tmp_path
    assert str(kwargs["command"]).startswith("python benchmark.py --protocol knn")


def test_plan_treats_a_model_a_wildcard_matched_as_the_command_line_does(
    tiny_voc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.api
    from bench.weights import WeightsUnavailableError

    monkeypatch.setattr("bench.weights.hub_reachable", lambda timeout=0: False)
    with pytest.raises(WeightsUnavailableError):
        bench.api.plan("course", ["test_resnet"], tiny_voc, pretrained="imagenet")
    with pytest.raises(WeightsUnavailableError, match=r"none of the models the --models patterns matched "
                                                      r"\(test_resnet\) has weights here"):
        bench.api.plan("course", ["test_res*"], tiny_voc, pretrained="imagenet")
