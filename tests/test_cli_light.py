"""The light paths of ``python benchmark.py`` load no training stack, and bad flags stop before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from light_probe import BENCHMARK, probe

from bench.cli import main
from bench.store import LEADERBOARD_CSV, LEADERBOARD_MD, REPORT_MD, RunRecord, write_run
from voc.labels import load_labels
from voc.metrics import evaluate


def _store_run(out: Path, voc_root: Path, model: str, quality: float, seed: int) -> None:
    """A finished run as the runner stores it, with scores that rank positives first ~ ``quality``."""
    ids, labels = load_labels(voc_root, "2012", "val")
    rng = np.random.default_rng(seed)
    scores = np.clip(quality * (labels == 1) + (1 - quality) * rng.random(labels.shape), 0, 1)
    record = RunRecord(
        model=model,
        status="ok",
        weights="random init",
        dataset={"root": str(voc_root), "year": "2012", "eval_split": "val", "description": "tiny VOC2012 val"},
        config={"name": "course", "epochs": 1, "seed": 0},
        metrics=evaluate(scores, labels),
        throughput={"train_images_per_s": 10.0 * (seed + 1), "eval_images_per_s": 40.0},
        params=1000,
        command=f"python benchmark.py --models {model}",
    )
    write_run(out / model, record, ids, scores, labels)


@pytest.fixture()
def stored_runs(tiny_voc: Path, tmp_path: Path) -> Path:
    out = tmp_path / "results"
    _store_run(out, tiny_voc, "good", 0.9, 0)
    _store_run(out, tiny_voc, "bad", 0.2, 1)
    return out


def test_leaderboard_loads_no_training_stack(stored_runs: Path, tmp_path: Path) -> None:
    run = probe(BENCHMARK, "leaderboard", "--out", str(stored_runs), cwd=tmp_path)
    assert (run.code, run.heavy) == (0, []), run.proc.stderr[-3000:]
    md = (stored_runs / LEADERBOARD_MD).read_text()
    assert "| good" in md and "| bad" in md
    assert (stored_runs / LEADERBOARD_CSV).is_file()
    assert md in run.proc.stdout  # printed too


def test_report_loads_no_training_stack(stored_runs: Path, tmp_path: Path) -> None:
    run = probe(BENCHMARK, "report", "--out", str(stored_runs), "--gallery-classes", "dog", cwd=tmp_path)
    assert (run.code, run.heavy) == (0, []), run.proc.stderr[-3000:]
    assert (stored_runs / REPORT_MD).is_file() and (stored_runs / LEADERBOARD_MD).is_file()
    assert (stored_runs / "report" / "gallery" / "good" / "dog.jpg").is_file()  # the leader's gallery


def test_the_light_imports_load_no_training_stack(tmp_path: Path) -> None:
    """What the command line imports before it knows whether it will train."""
    code = ("import bench.cli, bench.store, bench.protocols.settings, bench.data, bench.report.leaderboard, "
            "bench.report.markdown, voc.config, voc.labels")
    run = probe(code, cwd=tmp_path, timeout=120)
    assert (run.code, run.heavy) == (0, []), run.proc.stderr[-3000:]


BAD_FLAGS: dict[str, tuple[list[str], list[str]]] = {
    # case: (flags, texts the error message must contain)
    "seed-and-seeds": (["--seed", "1", "--seeds", "0", "1"], ["--seed", "--seeds"]),
    "repeated-seeds": (["--seeds", "0", "1", "0"], ["--seeds", "[0]"]),
    "gallery-all-and-a-model": (["--gallery-models", "all", "resnet18"], ["--gallery-models", "'all'"]),
    "gallery-k-0": (["--gallery-k", "0"], ["--gallery-k"]),
    "unknown-class": (["--gallery-classes", "nosuchclass"], ["--gallery-classes", "nosuchclass"]),
    "unknown-model": (["--models", "nosuchnet"], ["--models", "'nosuchnet'"]),
    "gallery-model-not-run": (["--gallery-models", "resnet18"], ["--gallery-models", "resnet18"]),
    "crop-larger-than-resize": (
        ["--resize", "32", "--crop", "64"], ["--crop", "crop (64) must not exceed resize (32)"]
    ),
}


@pytest.mark.parametrize(("flags", "named"), list(BAD_FLAGS.values()), ids=list(BAD_FLAGS))
def test_bad_flags_exit_2_naming_the_flag(
    flags: list[str],
    named: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # were a check missing, --data auto would look here, not in the repository
    out = tmp_path / "results"
    argv = ["--models", "test_resnet", "--data", str(tmp_path / "no-voc"), "--pretrained", "none", "--out", str(out)]
    argv += ["--epochs", "1", "--num-workers", "0", *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")  # one line, no traceback
    for text in named:
        assert text in err, err
    assert not out.exists()
