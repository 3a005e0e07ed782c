"""Which data a run uses (``--data``): $VOC_ROOT, ./data/VOCdevkit, a path, or the cached synthetic set."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import bench.data
from bench.data import DataSource, resolve_data, synthetic_source

TINY = {"n_train": 4, "n_val": 2, "seed": 0}


@pytest.fixture()
def generations(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The arguments of every call to the synthetic generator (which still runs)."""
    calls: list[dict[str, Any]] = []
    real = bench.data.generate_synthetic_voc

    def counted(root: Path, n_train: int, n_val: int, **kwargs: Any) -> Path:
        calls.append({"root": Path(root), "n_train": n_train, "n_val": n_val, **kwargs})
        return real(root, n_train, n_val, **kwargs)

    monkeypatch.setattr(bench.data, "generate_synthetic_voc", counted)
    return calls


@pytest.fixture()
def no_voc_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder and no $VOC_ROOT."""
    monkeypatch.delenv("VOC_ROOT", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_auto_uses_voc_root_from_the_environment(no_voc_here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (no_voc_here / "data" / "VOCdevkit").mkdir(parents=True)  # $VOC_ROOT wins over ./data
    monkeypatch.setenv("VOC_ROOT", "/somewhere/voc")
    assert resolve_data("auto") == DataSource(root=Path("/somewhere/voc"))


def test_auto_uses_data_vocdevkit_in_the_working_folder(no_voc_here: Path, generations: list) -> None:
    (no_voc_here / "data" / "VOCdevkit").mkdir(parents=True)
    data = resolve_data("auto")
    assert data == DataSource(root=Path("data"))
    assert not data.is_synthetic
    assert generations == []


def test_auto_without_voc_falls_back_to_the_synthetic_set(
    no_voc_here: Path, generations: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.data, "SYNTHETIC_SIZE", TINY)  # the real 1600/400 takes minutes
    (no_voc_here / "data").mkdir()  # ./data without a VOCdevkit is not real VOC
    data = resolve_data("auto")
    assert data == DataSource(root=Path("data/synthetic"), synthetic={**TINY, "year": "2012"})
    generated = [(c["root"], c["n_train"], c["n_val"], c["seed"]) for c in generations]
    assert generated == [(Path("data/synthetic"), 4, 2, 0)]
    main = no_voc_here / "data" / "synthetic" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main"
    assert len((main / "train.txt").read_text().split()) == 4
    assert len((main / "val.txt").read_text().split()) == 2
    assert resolve_data("synthetic") == data  # --data synthetic: the same set, not generated again
    assert len(generations) == 1


def test_year_2007_uses_its_own_synthetic_set_with_a_test_split(
    no_voc_here: Path, generations: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.data, "SYNTHETIC_VOC2007_SIZE", {"n_train": 3, "n_val": 2, "n_test": 4, "seed": 0})
    data = resolve_data("synthetic", year="2007")
    assert data.root == Path("data/synthetic-voc2007")
    assert data.synthetic == {"seed": 0, "n_train": 3, "n_val": 2, "n_test": 4, "year": "2007"}
    main = no_voc_here / "data" / "synthetic-voc2007" / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    assert [len((main / f"{s}.txt").read_text().split()) for s in ("trainval", "test")] == [5, 4]
    assert data.describe("2007", "trainval", "test") == "synthetic VOC2007 trainval→test (seed 0, 3/2/4)"
    assert resolve_data("auto", year="2007") == data and len(generations) == 1  # found complete: reused


def test_voc_synth_defaults_to_the_years_sizes_and_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from voc.cli import main as voc_main

    calls: list[tuple] = []
    monkeypatch.setattr("voc.synthetic.generate_synthetic_voc", lambda *a, **k: calls.append((a, k)) or Path("x"))
    assert voc_main(["synth", "--year", "2007"]) == 0
    assert calls[0][0] == (Path("data/synthetic-voc2007"), 2501, 2510, 4952) and calls[0][1]["year"] == "2007"
    assert voc_main(["synth", "--out", "elsewhere", "--train", "5", "--val", "3"]) == 0
    assert calls[1][0] == (Path("elsewhere"), 5, 3, 0) and calls[1][1]["year"] == "2012"


def test_a_path_is_taken_as_it_is(tmp_path: Path, generations: list) -> None:
    assert resolve_data(str(tmp_path / "voc")) == DataSource(root=tmp_path / "voc")  # checked later, by check_data
    assert generations == []


def test_synthetic_set_is_generated_once_then_reused(
    tmp_path: Path, generations: list, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "synthetic"
    first = synthetic_source(root=root, **TINY)
    jpegs = sorted((root / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))
    assert len(jpegs) == 6 and len(generations) == 1
    written = {p: p.stat().st_mtime_ns for p in jpegs}
    with caplog.at_level(logging.INFO, logger="bench.data"):
        again = synthetic_source(root=root, **TINY)
    assert again == first and len(generations) == 1
    assert "Using the cached synthetic VOC set" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in jpegs} == written  # not rewritten

    other = synthetic_source(root=root, n_train=5, n_val=2, seed=0)  # other arguments: generated again
    assert len(generations) == 2 and other.synthetic == {"seed": 0, "n_train": 5, "n_val": 2, "year": "2012"}
    assert len((root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main" / "train.txt").read_text().split()) == 5


def test_describe() -> None:
    real = DataSource(root=Path("/voc"))
    assert real.describe("2012", "train", "val") == "VOC2012 train→val"
    assert real.describe("2007", "trainval", "test") == "VOC2007 trainval→test"
    synthetic = DataSource(root=Path("/s"), synthetic={"seed": 3, "n_train": 4, "n_val": 2, "year": "2012"})
    assert synthetic.describe("2012", "train", "val") == "synthetic VOC2012 train→val (seed 3, 4/2)"


def test_to_record_of_real_voc() -> None:
    assert DataSource(root=Path("/voc")).to_record("2007", "trainval", "test") == {
        "kind": "voc",
        "root": "/voc",
        "year": "2007",
        "train_split": "trainval",
        "eval_split": "test",
        "description": "VOC2007 trainval→test",
    }


def test_to_record_of_synthetic_voc_with_skipped_images() -> None:
    args = {"seed": 0, "n_train": 4, "n_val": 2, "year": "2012"}
    data = DataSource(root=Path("/s"), synthetic=args, skipped={"val": {"img1": "does not decode"}})
    record = data.to_record("2012", "train", "val")
    assert record == {
        "kind": "synthetic",
        "root": "/s",
        "year": "2012",
        "train_split": "train",
        "eval_split": "val",
        "description": "synthetic VOC2012 train→val (seed 0, 4/2)",
        "synthetic": args,
        "skipped_images": {"val": {"img1": "does not decode"}},
    }
    record["synthetic"]["seed"] = 9  # a copy: the record can be filled in without touching the source
    assert data.synthetic == args and args["seed"] == 0
