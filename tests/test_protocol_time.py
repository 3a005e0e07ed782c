"""``scripts/protocol_time.py`` (benchmarks/README.md: course-vs-modern time per model) runs both protocols
per model and round, alternating their order, and its ratios are the records' times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

QUICK = ["--resize", "32", "--crop", "32", "--crops", "full", "--epochs", "1", "--pretrained", "none",
         "--num-workers", "0", "--batch-size", "4", "--eval-batch-size", "8"]


@pytest.fixture(scope="module")
def protocol_time(load_script):  # noqa: ANN001, ANN201
    return load_script("protocol_time")


@pytest.mark.slow
def test_ratios_are_the_records_times(
    protocol_time, tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: ANN001
) -> None:
    out = tmp_path / "sitting"
    argv = ["--models", "test_resnet", "--rounds", "1", "--out", str(out), "--", *QUICK,
            "--data", str(tiny_voc)]
    assert protocol_time.main(argv) == 0
    table = capsys.readouterr().out
    [row] = [line.split(" | ") for line in table.splitlines() if line.startswith("| test_") and "→" in line]
    assert (row[0], row[2]) == ("| test_resnet", "course → modern")
    totals = {}
    for protocol in ("course", "modern"):
        [record] = (out / f"test_resnet-{protocol}-r0").glob("*/result.json")
        data = json.loads(record.read_text())
        assert data["config"]["name"] == protocol and data["status"] == "ok"
        totals[protocol] = data["wall_time_s"]["total"]
        assert (out / f"test_resnet-{protocol}-r0.log").is_file()
    assert float(row[3]) == pytest.approx(totals["course"], abs=0.05)
    assert float(row[5]) == pytest.approx(totals["modern"] / totals["course"], abs=5e-4)
    summary = [line for line in table.splitlines() if line.startswith("| test_") and "→" not in line]
    assert [line.split(" | ")[:3] for line in summary] == [["| test_resnet", "1", row[5]]]


def test_every_other_pair_runs_in_the_other_order(protocol_time) -> None:  # noqa: ANN001
    pair = ("course", "modern")
    orders = [protocol_time.run_order(pair, r, m) for r in range(2) for m in range(3)]
    assert orders == [pair, pair[::-1], pair, pair[::-1], pair, pair[::-1]]


@pytest.mark.slow
def test_a_failed_run_names_its_log(protocol_time, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    argv = ["--models", "no_such_model", "--rounds", "1", "--out", str(tmp_path), "--", *QUICK, "--data", "synthetic"]
    assert protocol_time.main(argv) == 1
    err = capsys.readouterr().err
    assert "error:" in err and str(tmp_path / "no_such_model-course-r0.log") in err


def test_bad_arguments_are_refused(protocol_time, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as exit_info:
        protocol_time.main(["--rounds", "0"])
    assert exit_info.value.code == 2 and "--rounds must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        protocol_time.main(["--protocols", "modern", "modern"])
    assert "two different protocols" in capsys.readouterr().err
