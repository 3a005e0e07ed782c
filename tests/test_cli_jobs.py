"""The command line's jobs (``run``, the default; ``report``; ``leaderboard``; ``speed``): each has its
own flags, a flag of another job is an error naming that job, a removed mode flag is an error naming
the job that replaced it, and the light jobs load no training stack."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from light_probe import BENCHMARK, probe

from bench.cli import JOBS, main, parse_args
from bench.cli.flags import FINETUNE_FLAGS, FROZEN_FLAGS, given_flags

ROOT = Path(__file__).resolve().parents[1]


def test_no_job_is_the_run() -> None:
    assert parse_args([]).job == "run"
    argv = ["--models", "resnet18", "--protocol", "linear", "--probe", "logreg"]
    assert parse_args(argv) == parse_args(["run", *argv])
    assert list(JOBS) == ["run", "report", "leaderboard", "speed"]


def test_help_lists_the_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for job in JOBS:
        assert f"    {job} " in text
    assert "`python benchmark.py --models resnet50` is `python benchmark.py run --models resnet50`" in " ".join(
        text.split())


@pytest.mark.parametrize(
    ("argv", "flag", "owners"),
    [
        (["report", "--models", "resnet18"], "--models", ["run", "speed"]),
        (["report", "--no-report"], "--no-report", ["run"]),
        (["report", "--speed-data-only"], "--speed-data-only", ["speed"]),
        (["leaderboard", "--target-rate", "10"], "--target-rate", ["speed"]),
        (["leaderboard", "--gallery-k", "3"], "--gallery-k", ["run", "report"]),
        (["speed", "--seeds", "0", "1"], "--seeds", ["run"]),
        (["speed", "--pretrained", "none"], "--pretrained", ["run"]),
        (["speed", "--probe", "svm"], "--probe", ["run"]),
        (["--speed-steps", "2"], "--speed-steps", ["speed"]),
        (["run", "--no-such-flag"], "--no-such-flag", []),
    ],
)
def test_a_flag_of_another_job_is_an_error_naming_it(
    argv: list[str], flag: str, owners: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    job = argv[0] if argv[0] in JOBS else "run"
    assert f"benchmark.py {job}: error: unrecognized arguments: {flag}" in err
    if owners:
        assert f"{flag} is a flag of " + " and ".join(f"`python benchmark.py {o}`" for o in owners) in err
    else:
        assert "is a flag of" not in err


@pytest.mark.parametrize("argv", [[], ["run"], ["--models", "resnet18"]], ids=["alone", "after-run", "after-flags"])
@pytest.mark.parametrize(("flag", "job"), [("--report-only", "report"), ("--leaderboard-only", "leaderboard"),
                                           ("--speed", "speed")])
def test_a_removed_mode_flag_names_the_job_that_replaced_it(
    flag: str, job: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, flag, "--out", "unused"])
    assert exit_.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (f"benchmark.py run: error: unrecognized arguments: {flag}; {flag}: use `python benchmark.py {job}`"
            in err)


def test_report_without_records_names_the_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: python benchmark.py report: no result.json under {tmp_path}; run the benchmark first, or point "
        "--out at its results folder\n"
    )


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["speed", "--help"]],
                         ids=["help", "run-help", "speed-help"])
def test_help_loads_no_training_stack(argv: list[str], tmp_path: Path) -> None:
    """The jobs' help (report and leaderboard: tests/test_cli_light.py)."""
    run = probe(BENCHMARK, *argv, cwd=tmp_path)
    assert (run.code, run.heavy) == (0, []), run.proc.stderr[-3000:]


@pytest.mark.parametrize("adders", [FINETUNE_FLAGS, FROZEN_FLAGS], ids=["fine-tuning", "frozen"])
def test_the_flags_one_kind_of_protocol_polices_are_named_as_typed(adders: tuple) -> None:
    """``given_flags`` names a flag by its argument's name; every flag of the two groups is spelled so."""
    parser = argparse.ArgumentParser()
    for add in adders:
        add(parser)
    defaults = vars(parser.parse_args([]))
    assert defaults and all(value is None for value in defaults.values())  # None: not given
    help_text = parser.format_help()
    for name in defaults:
        assert f"--{name.replace('_', '-')} " in help_text, name
    every = argparse.Namespace(**{name: 1 for name in defaults})
    assert given_flags(every, adders) == [f"--{name.replace('_', '-')}" for name in defaults]


def test_no_module_of_the_command_line_is_long() -> None:
    lengths = {path.name: len(path.read_text(encoding="utf-8").splitlines())
               for path in (ROOT / "bench" / "cli").glob("*.py")}
    assert lengths and max(lengths.values()) <= 500, lengths


def test_the_options_objects_are_their_flags_values() -> None:
    """``TrainerOptions`` and ``FrozenOptions`` are built from the declared flags: no flag is their
    defaults, and every flag given lands in the field of its name."""
    from bench.cli.settings import frozen_options, trainer_options
    from bench.frozen.runner import FrozenOptions
    from bench.train.experiment import TrainerOptions

    assert trainer_options(parse_args(["run"])) == TrainerOptions()
    assert frozen_options(parse_args(["run", "--protocol", "linear"])) == FrozenOptions()
    trainer = trainer_options(parse_args(["run", "--accelerator", "cpu", "--num-workers", "3", "--cache-dir", "c",
                                          "--devices", "2", "--num-nodes", "4", "--strategy", "ddp",
                                          "--deterministic", "--eval-every", "5"]))
    assert trainer == TrainerOptions(accelerator="cpu", devices=2, num_nodes=4, strategy="ddp", num_workers=3,
                                     cache_dir=Path("c"), deterministic=True, eval_every=5)
    frozen = frozen_options(parse_args(["run", "--protocol", "linear", "--accelerator", "cpu", "--num-workers", "0",
                                        "--loader-threads", "3", "--cache-dir", "c", "--feature-cache", "f",
                                        "--n-jobs", "2", "--compile", "off"]))
    assert frozen == FrozenOptions(accelerator="cpu", num_workers=0, loader_threads=3, cache_dir=Path("c"),
                                   feature_cache=Path("f"), n_jobs=2, compile="off")
