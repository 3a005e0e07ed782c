"""``--shard K/N`` and SLURM job arrays: the split, where K and N come from, and two shards run as
concurrent processes into one --out giving the leaderboard of a single sweep."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main, parse_args
from bench.cli.run import sweep_shard
from bench.shard import WHOLE, Shard, parse_shard, shard_from_slurm
from bench.store import LEADERBOARD_CSV, RunRecord
from bench.sweep import shard_runs, sweep
from bench.weights import Weights

ROOT = Path(__file__).resolve().parents[1]


# -- the split -------------------------------------------------------------------------------


def test_runs_are_dealt_round_robin_in_sweep_order() -> None:
    models, seeds = ["a", "b", "c"], [0, 1]
    # sweep order: a0 b0 c0 a1 b1 c1 (every model of a seed, then the next seed); run i -> shard i mod 4
    assert shard_runs(models, seeds, Shard(0, 4)) == [("a", 0), ("b", 1)]
    assert shard_runs(models, seeds, Shard(1, 4)) == [("b", 0), ("c", 1)]
    assert shard_runs(models, seeds, Shard(2, 4)) == [("c", 0)]
    assert shard_runs(models, seeds, Shard(3, 4)) == [("a", 1)]
    assert shard_runs(models, seeds) == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("c", 1)]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_every_run_is_in_exactly_one_shard_and_the_split_is_deterministic(n: int) -> None:
    models, seeds = [f"m{k}" for k in range(7)], [0, 1, 2]
    shares = [shard_runs(models, seeds, Shard(k, n)) for k in range(n)]
    everything = shard_runs(models, seeds)
    assert sorted(run for share in shares for run in share) == sorted(everything)
    assert len({run for share in shares for run in share}) == len(everything)  # no run twice
    assert shares == [shard_runs(list(models), list(seeds), Shard(k, n)) for k in range(n)]
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced to one run


def _record(name: str) -> RunRecord:
    return RunRecord(model=name, status="ok")


def test_only_shard_0_runs_the_baseline_and_each_shard_only_its_runs() -> None:
    weights = {m: Weights("random", "random init") for m in ("a", "b", "c")}
    ran: dict[int, list[str]] = {}
    for k in range(2):
        records = sweep(
            ["a", "b", "c"], seeds=[0], weights=weights, baseline=lambda: _record("baseline"),
            run_one=lambda model, seed, w: _record(model), on_record=None, shard=Shard(k, 2),
        )
        ran[k] = [r.model for r in records]
    assert ran == {0: ["baseline", "a", "c"], 1: ["b"]}


@pytest.mark.parametrize(
    ("text", "expected"), [("0/1", WHOLE), ("0/8", Shard(0, 8)), ("7/8", Shard(7, 8)), (" 2 / 3 ", Shard(2, 3))]
)
def test_parse_shard(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [("3/2", "K counts from 0 to N-1 = 1, not 3"), ("2/2", "first shard is 0/2"), ("x", "expected K/N"),
     ("1", "expected K/N"), ("0/0", "at least 1"), ("-1/2", "expected K/N"), ("1/x", "expected K/N")],
)
def test_bad_shards_are_usage_errors_naming_the_flag_and_the_fix(
    text: str, match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=match):
        parse_shard(text)
    assert main(["--models", "test_resnet", f"--shard={text}", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --shard: ") and match in err


@pytest.mark.parametrize("job", ["speed", "leaderboard", "report"])
def test_shard_only_splits_a_training_sweep(job: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([job, "--shard", "0/2", "--out", "unused"])
    assert exit_.value.code == 2
    assert "--shard is a flag of `python benchmark.py run`" in capsys.readouterr().err


# -- SLURM job arrays ------------------------------------------------------------------------


def _slurm(task: int, count: int, low: int = 0, step: int = 1) -> dict[str, str]:
    return {
        "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": str(count), "SLURM_ARRAY_TASK_MIN": str(low),
        "SLURM_ARRAY_TASK_MAX": str(low + step * (count - 1)), "SLURM_ARRAY_TASK_STEP": str(step),
        "SLURM_ARRAY_JOB_ID": "4242",
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),  # not in a job array
        (_slurm(0, 8), Shard(0, 8)),  # --array=0-7
        (_slurm(7, 8), Shard(7, 8)),
        (_slurm(1, 8, low=1), Shard(0, 8)),  # --array=1-8
        (_slurm(8, 8, low=1), Shard(7, 8)),
        (_slurm(6, 4, step=2), Shard(3, 4)),  # --array=0-6:2
        ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard(3, 4)),  # MIN/MAX/STEP not set
    ],
)
def test_shard_from_slurm(environ: dict[str, str], expected: Shard | None) -> None:
    assert shard_from_slurm(environ) == expected


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"SLURM_ARRAY_TASK_ID": "3"}, "SLURM_ARRAY_TASK_COUNT is not"),
        ({**_slurm(4, 3, low=1), "SLURM_ARRAY_TASK_MAX": "9"}, "not 3 evenly spaced"),  # --array=1,4,9
        ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"}, "not a whole number"),
    ],
)
def test_a_job_array_that_maps_to_no_shard_says_to_give_shard(environ: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        shard_from_slurm(environ)
    assert "--shard K/N" in str(info.value)


def test_the_command_line_reads_the_job_array_and_shard_wins(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in _slurm(3, 4, low=1).items():
        monkeypatch.setenv(name, value)
    assert sweep_shard(parse_args(["--models", "test_resnet"])) == Shard(2, 4)
    assert sweep_shard(parse_args(["--models", "test_resnet", "--shard", "0/1"])) == WHOLE
    monkeypatch.setenv("SLURM_ARRAY_TASK_MAX", "99")
    assert main(["--models", "test_resnet", "--out", "unused"]) == 2  # before any work
    assert "error: --shard from the SLURM job array: " in capsys.readouterr().err


# -- two shards at once ----------------------------------------------------------------------


def _leaderboard(out: Path) -> list[dict[str, str]]:
    """leaderboard.csv without the columns that time things."""
    with open(out / LEADERBOARD_CSV, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in row.items() if "img/s" not in k} for row in rows]


@pytest.mark.slow
def test_two_concurrent_shards_write_the_leaderboard_of_one_sweep(tiny_voc: Path, tmp_path: Path) -> None:
    def command(out: Path, *extra: str) -> list[str]:
        return [
            sys.executable, "benchmark.py", "--models", "test_resnet", "test_efficientnet", "--data", str(tiny_voc),
            "--out", str(out), "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", "1",
            "--pretrained", "none", "--num-workers", "0", "--no-report", *extra,
        ]

    # one thread each: the thread count may change the last bits of a run (docs/usage.md, reproducibility)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    shared, single = tmp_path / "shared", tmp_path / "single"
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for cmd in (command(shared, "--shard", "0/2"), command(shared, "--shard", "1/2"), command(single))
    ]
    try:
        errors = [proc.communicate(timeout=300)[1] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [proc.returncode for proc in procs] == [0, 0, 0], "\n".join(e[-2000:] for e in errors)
    assert "shard 0/2: 1 of the sweep's 2 run(s): test_resnet seed 0" in errors[0]
    assert "shard 1/2: 1 of the sweep's 2 run(s): test_efficientnet seed 0" in errors[1]
    assert "the prior baseline runs in shard 0" in errors[1]
    assert sorted(p.name for p in shared.iterdir() if p.is_dir() and not p.name.startswith(".")) == [
        "prior-baseline", "test_efficientnet", "test_resnet"]  # one folder each (caches are hidden folders)
    rows = _leaderboard(shared)
    assert sorted(row["model"] for row in rows) == ["prior-baseline", "test_efficientnet", "test_resnet"]
    assert rows == _leaderboard(single)
