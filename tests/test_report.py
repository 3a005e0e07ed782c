"""report.md, its figures and galleries, seed summaries and paired comparisons, from stored runs."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.cli import main
from bench.report.gallery import select
from bench.report.leaderboard import write_leaderboard
from bench.report.markdown import ReportOptions, write_report
from bench.report.plots import ParetoPoint, pareto_front
from bench.report.summary import mean_tail_curve, summarize
from bench.store import (
    BASELINE_NAME,
    LABELS_FILE,
    LEADERBOARD_CSV,
    LEADERBOARD_MD,
    REPORT_DIR,
    RESULT_FILE,
    RunRecord,
    read_runs,
    run_dir_name,
    write_run,
)
from voc.constants import VOC_CLASSES
from voc.labels import load_labels
from voc.metrics import evaluate

TINY = [
    "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", "1", "--pretrained", "none", "--num-workers", "0",
]


def _store_run(
    out: Path, voc_root: Path, model: str, scores: np.ndarray, seed: int = 0, rate: float = 10.0,
    throughput: dict | None = None,
) -> None:
    """A finished run as the runner writes it: record, predictions and labels of the val split
    (``throughput``: the record's, where not a fine-tuning run's at ``rate``)."""
    ids, labels = load_labels(voc_root, "2012", "val")
    record = RunRecord(
        model=model,
        status="ok",
        weights="random init",
        dataset={"root": str(voc_root), "year": "2012", "eval_split": "val", "description": "tiny VOC2012 val"},
        config={"name": "course", "epochs": 1, "seed": seed},
        metrics=evaluate(scores, labels),
        throughput=throughput or {"train_images_per_s": rate, "eval_images_per_s": 4 * rate},
        params=1000,
        command=f"python benchmark.py --models {model}",
    )
    write_run(out / run_dir_name(model, seed), record, ids, scores, labels)


def _scores(voc_root: Path, quality: float, seed: int) -> np.ndarray:
    """Scores that rank the positives first with probability ~ ``quality``."""
    _, labels = load_labels(voc_root, "2012", "val")
    rng = np.random.default_rng(seed)
    return np.clip(quality * (labels == 1) + (1 - quality) * rng.random(labels.shape), 0, 1)


def _linked_files(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


@pytest.fixture()
def three_models(tiny_voc: Path, tmp_path: Path) -> Path:
    out = tmp_path / "results"
    _store_run(out, tiny_voc, "good", _scores(tiny_voc, 0.9, 0), rate=5.0)
    _store_run(out, tiny_voc, "fast", _scores(tiny_voc, 0.3, 1), rate=50.0)
    _store_run(out, tiny_voc, "slow_bad", _scores(tiny_voc, 0.1, 2), rate=2.0)
    return out


def test_report_figures_and_galleries_exist_and_open(three_models: Path) -> None:
    path = write_report(three_models, ReportOptions(gallery_classes=("dog", "cat"), gallery_k=3))
    md = path.read_text()
    links = _linked_files(md)
    for name in ("tail_accuracy.png", "per_class_ap.png", "map_vs_throughput.png", "pr_curves.png"):
        assert f"{REPORT_DIR}/{name}" in links
    galleries = [link for link in links if "/gallery/" in link]
    # the leader only
    assert sorted(galleries) == [f"{REPORT_DIR}/gallery/good/cat.jpg", f"{REPORT_DIR}/gallery/good/dog.jpg"]
    for link in links:
        with Image.open(three_models / link) as image:
            image.verify()
    assert "## Which differences are real" in md and "| 1      | good" in md
    assert "Pareto front (no other model is both faster and more accurate): good, fast." in md


@pytest.mark.slow
def test_gallery_for_every_model_and_all_classes(three_models: Path) -> None:
    md = write_report(three_models, ReportOptions(gallery_models=("all",), gallery_k=2)).read_text()
    for model in ("good", "fast", "slow_bad"):
        assert f"### {model}" in md
        assert len(list((three_models / REPORT_DIR / "gallery" / model).glob("*.jpg"))) == len(VOC_CLASSES)
    names = ("good", "slow_bad")
    options = ReportOptions(gallery_models=(*names, "crashed"), gallery_classes=("dog",))
    md = write_report(three_models, options).read_text()
    assert [line for line in md.splitlines() if line.startswith("### ")] == [f"### {m}" for m in names]
    assert "No gallery for crashed: no successful run in this folder." in md


@pytest.mark.slow
def test_stale_figures_are_removed(three_models: Path) -> None:
    write_report(three_models, ReportOptions(gallery_models=("all",), gallery_classes=("dog",)))
    assert (three_models / REPORT_DIR / "gallery" / "fast" / "dog.jpg").is_file()
    assert (three_models / REPORT_DIR / "gallery" / "good" / "dog.jpg").is_file()
    write_report(three_models, ReportOptions(gallery_classes=("cat",)))
    assert not (three_models / REPORT_DIR / "gallery" / "fast").exists()
    assert not (three_models / REPORT_DIR / "gallery" / "good" / "dog.jpg").exists()


def test_missing_images_are_named_not_dropped(three_models: Path, tiny_voc: Path, tmp_path: Path) -> None:
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(tiny_voc, moved)
    out = tmp_path / "r2"
    _store_run(out, moved, "good", _scores(moved, 0.9, 0))
    shutil.rmtree(moved / "VOCdevkit" / "VOC2012" / "JPEGImages")
    md = write_report(out).read_text()
    assert "No gallery:" in md and "JPEGImages" in md


@pytest.mark.slow
def test_a_gallery_whose_images_are_gone_is_kept_not_deleted(
    tiny_voc: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(tiny_voc, moved)
    out = tmp_path / "r3"
    _store_run(out, moved, "good", _scores(moved, 0.9, 0))
    options = ReportOptions(gallery_classes=("dog", "cat"))
    drawn_md = write_report(out, options).read_text()
    drawn = {p.name: p.read_bytes() for p in (out / REPORT_DIR / "gallery" / "good").glob("*.jpg")}
    assert sorted(drawn) == ["cat.jpg", "dog.jpg"]
    shutil.rmtree(moved / "VOCdevkit" / "VOC2012" / "JPEGImages")
    with caplog.at_level(logging.WARNING):
        assert write_report(out, options).read_text() == drawn_md
    assert {p.name: p.read_bytes() for p in (out / REPORT_DIR / "gallery" / "good").glob("*.jpg")} == drawn
    assert "gallery of good kept as it was (2 files)" in caplog.text
    # a class that was never drawn cannot be kept: no gallery, and nothing half-kept
    md = write_report(out, ReportOptions(gallery_classes=("dog", "bus"))).read_text()
    assert "No gallery:" in md and not (out / REPORT_DIR / "gallery" / "good").exists()


@pytest.mark.slow
def test_report_is_deterministic(three_models: Path) -> None:
    options = ReportOptions(gallery_classes=("dog",))
    md1 = write_report(three_models, options).read_text()
    files1 = {p: p.read_bytes() for p in sorted((three_models / REPORT_DIR).rglob("*.*"))}
    md2 = write_report(three_models, options).read_text()
    files2 = {p: p.read_bytes() for p in sorted((three_models / REPORT_DIR).rglob("*.*"))}
    assert md1 == md2
    assert files1 == files2


def test_seeds_are_one_row_with_mean_and_sd(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    for seed, quality in ((0, 0.9), (1, 0.6), (2, 0.3)):
        _store_run(out, tiny_voc, "m", _scores(tiny_voc, quality, seed), seed=seed)
    (summary,) = summarize(read_runs(out))
    maps = [run.record.metric("mAP") for run in summary.runs]
    assert summary.seeds == [0, 1, 2]
    assert summary.mean["mAP"] == pytest.approx(np.mean(maps))
    assert summary.seed_std["mAP"] == pytest.approx(np.std(maps, ddof=1))
    write_leaderboard(out)
    md = (out / LEADERBOARD_MD).read_text()
    assert f"{np.mean(maps):.4f} ± {np.std(maps, ddof=1):.4f} (3 seeds)" in md
    frame = pd.read_csv(out / LEADERBOARD_CSV)
    assert len(frame) == 1 and frame.loc[0, "seeds"] == "0 1 2"
    assert frame.loc[0, "ranked_map_ci_low"] <= frame.loc[0, "ranked_map_ci_high"]


def test_paired_bootstrap_against_the_leader(three_models: Path, tiny_voc: Path) -> None:
    # an exact copy of the leader under another name cannot be told apart from it
    _store_run(three_models, tiny_voc, "good_copy", _scores(tiny_voc, 0.9, 0))
    summaries = {s.model: s for s in summarize(read_runs(three_models))}
    assert summaries["good"].p_not_better is None  # ranked first: names break the tie
    assert summaries["good_copy"].p_not_better == 0.5
    assert summaries["slow_bad"].p_not_better >= 0.95
    md = write_leaderboard(three_models)[0].read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 1 "))
    assert "leader" in row and " ± " in row


def test_paired_bootstrap_against_the_prior_baseline_flags_a_model_that_learned_nothing(
    three_models: Path, tiny_voc: Path,
) -> None:
    # the baseline scores every image with the train split's label frequencies; "frequencies" is a
    # model that learned exactly those: on every resample its mAP equals the baseline's (P = 0.5)
    _, train_labels = load_labels(tiny_voc, "2012", "train")
    _, labels = load_labels(tiny_voc, "2012", "val")
    priors = np.tile((train_labels == 1).mean(axis=0), (len(labels), 1))
    _store_run(three_models, tiny_voc, BASELINE_NAME, priors)
    _store_run(three_models, tiny_voc, "frequencies", priors.copy())
    summaries = {s.model: s for s in summarize(read_runs(three_models))}
    assert summaries[BASELINE_NAME].p_not_above_prior is None
    assert summaries["frequencies"].p_not_above_prior == 0.5
    assert summaries["good"].p_not_above_prior <= 0.05
    md = write_leaderboard(three_models)[0].read_text()
    notes = [line for line in md.splitlines() if "not shown above the prior baseline" in line]
    flagged = {line.split(":")[0].removeprefix("- ") for line in notes}
    assert "frequencies" in flagged and "good" not in flagged and BASELINE_NAME not in flagged
    frame = pd.read_csv(three_models / LEADERBOARD_CSV).set_index("model")
    assert frame.loc["frequencies", "p_map_not_better_than_prior"] == 0.5
    assert np.isnan(frame.loc[BASELINE_NAME, "p_map_not_better_than_prior"])


def test_select_top_and_bottom_hand_computed() -> None:
    ids = ["a", "b", "c", "d"]
    scores = np.array([[0.2], [0.9], [0.9], [0.1]])
    labels = np.array([[0], [1], [-1], [1]])
    top, bottom = select(ids, scores, labels, 0, k=2, class_names=("x",))
    assert [(i.image_id, i.score, i.label) for i in top] == [("b", 0.9, 1), ("c", 0.9, -1)]  # tie: by id
    assert [i.image_id for i in bottom] == ["d", "a"]
    assert top[0].present == ("x",) and bottom[1].present == ()


def test_pareto_front_hand_computed() -> None:
    points = [
        ParetoPoint("slow_good", 5.0, 0.8),
        ParetoPoint("fast_ok", 50.0, 0.5),
        ParetoPoint("dominated", 4.0, 0.4),
        ParetoPoint("mid", 20.0, 0.6),
        ParetoPoint("mid_worse", 20.0, 0.55),
    ]
    assert [points[i].name for i in pareto_front(points)] == ["slow_good", "mid", "fast_ok"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "1", "--seeds", "0", "1"], "--seed or --seeds"),
        (["--seeds", "1", "1"], "given more than once"),
        (["--gallery-classes", "dragon"], "--gallery-classes: unknown class"),
        (["--gallery-k", "0"], "--gallery-k must be positive"),
        (["--gallery-models", "all", "resnet18"], "stands alone"),
        (["--models", "resnet18", "--gallery-models", "resnet50"], "--gallery-models: ['resnet50'] not among"),
    ],
)
def test_bad_report_flags_fail_fast(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_report_needs_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--out", str(tmp_path)]) == 2
    assert "no result.json" in capsys.readouterr().err


def test_report_checks_gallery_models_against_records(
    three_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--out", str(three_models), "--gallery-models", "nope"]) == 2
    assert "not among the models ['fast', 'good', 'slow_bad']" in capsys.readouterr().err


@pytest.mark.slow
def test_seeds_sweep_then_report_rebuilds_the_same_report(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ["--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), *TINY, "--seeds", "0", "1",
            "--gallery-classes", "dog"]
    assert main(args) == 0
    assert (out / "test_resnet" / RESULT_FILE).is_file() and (out / "test_resnet-seed1" / RESULT_FILE).is_file()
    leaderboard = (out / LEADERBOARD_MD).read_text()
    row = next(line for line in leaderboard.splitlines() if "| test_resnet" in line)
    assert "(2 seeds)" in row
    assert "[report.md](report.md)" in leaderboard
    report = (out / "report.md").read_text()
    assert main(["report", "--out", str(out), "--gallery-classes", "dog"]) == 0
    assert (out / "report.md").read_text() == report
    assert (out / LEADERBOARD_MD).read_text() == leaderboard


def test_rewritten_predictions_are_resampled_again(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    _store_run(out, tiny_voc, "m", _scores(tiny_voc, 0.9, 0))
    (first,) = summarize(read_runs(out))
    _store_run(out, tiny_voc, "m", _scores(tiny_voc, 0.05, 5))  # same files, new contents
    (second,) = summarize(read_runs(out))
    assert first.ci["mAP"] != second.ci["mAP"]


def test_one_model_in_two_configurations_is_told_apart_by_folder(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    _store_run(out, tiny_voc, "m", _scores(tiny_voc, 0.9, 0))
    _store_run(out / "elsewhere", tiny_voc, "m", _scores(tiny_voc, 0.5, 1))
    (out / "elsewhere" / "m").rename(out / "m-fp32")
    record = (out / "m-fp32" / RESULT_FILE).read_text().replace('"epochs": 1', '"epochs": 2')
    (out / "m-fp32" / RESULT_FILE).write_text(record)
    (out / "elsewhere").rmdir()
    md = write_leaderboard(out)[0].read_text()
    assert "| 1      | m [m]" in md and "| 2      | m [m-fp32]" in md


def test_mean_tail_curve_of_seeds_with_different_grids_hand_computed() -> None:
    a = {"thresholds": [0.5, 0.7, 0.9], "values": [0.6, 0.8, 1.0]}
    b = {"thresholds": [0.5, 0.6, 0.7], "values": [0.4, None, 0.6]}  # None: undefined there
    grid, mean = mean_tail_curve([a, b])
    np.testing.assert_allclose(grid, [0.5, 0.6, 0.7])  # b's grid ends first
    # a at the grid: 0.6, 0.7, 0.8; b: 0.4, 0.5 (between its defined points), 0.6
    np.testing.assert_allclose(mean, [0.5, 0.6, 0.7])
    assert mean_tail_curve([a, {"thresholds": [0.5], "values": [None]}]) is None
    assert mean_tail_curve([a, None]) is None


def test_a_run_without_its_labels_file_gets_a_note_naming_it(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    _store_run(out, tiny_voc, "m", _scores(tiny_voc, 0.9, 0))
    (out / "m" / LABELS_FILE).unlink()  # every run folder has its labels.csv: none is read from the dataset
    (summary,) = summarize(read_runs(out))
    assert summary.ci == {} and summary.note == f"no interval: {out / 'm' / LABELS_FILE}: labels file not found"
    md = write_leaderboard(out)[0].read_text()
    assert f"- m: no interval: {out / 'm' / LABELS_FILE}: labels file not found" in md


@pytest.mark.slow
def test_report_has_one_part_per_protocol_with_its_own_figures(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    _store_run(out, tiny_voc, "fine", _scores(tiny_voc, 0.6, 0))
    _store_run(out / "elsewhere", tiny_voc, "probe", _scores(tiny_voc, 0.9, 1))
    (out / "elsewhere" / "probe").rename(out / "probe-linear")
    (out / "elsewhere").rmdir()
    record = json.loads((out / "probe-linear" / RESULT_FILE).read_text())
    record["config"]["name"] = "linear"
    (out / "probe-linear" / RESULT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    md = write_report(out, ReportOptions()).read_text()
    course, linear = md.split("# Protocol `course`")[1].split("# Protocol `linear`")
    assert "fine" in course and "probe" not in course
    assert "probe" in linear and "fine" not in linear
    assert "report/course/per_class_ap.png" in course and "report/linear/per_class_ap.png" in linear
    assert (out / "report" / "course" / "per_class_ap.png").is_file()
    assert (out / "report" / "linear" / "per_class_ap.png").is_file()
    assert "leader" in course and "leader" in linear  # each part has its own leader
    # galleries too: two protocols' leaders of one model never overwrite each other's
    assert "report/course/gallery/fine/" in course and "report/linear/gallery/probe/" in linear
    assert not (out / "report" / "gallery").exists()


def _throughput_part(out: Path) -> str:
    """The report's throughput part for the runs stored under ``out``, drawn alone."""
    from bench.report.markdown import _throughput_figure
    from bench.report.summary import display_names, summarize
    from bench.store import read_runs

    summaries = summarize(read_runs(out), None)
    return "\n".join(_throughput_figure(out, summaries, display_names(summaries), Path("report")))


def test_frozen_runs_plot_map_against_their_feature_extraction_rate(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "frozen"
    for model, quality, rate in (("a", 0.9, 30.0), ("b", 0.3, 60.0)):
        _store_run(out, tiny_voc, model, _scores(tiny_voc, quality, 0), throughput={
            "train_images_per_s": None, "eval_images_per_s": None,
            "feature_train_images_per_s": rate, "feature_eval_images_per_s": rate + 10})
    md = _throughput_part(out)
    assert "## mAP against feature-extraction throughput" in md and "training throughput" not in md
    assert "Pareto front (no other model is both faster and more accurate): a, b." in md
    assert (out / "report" / "map_vs_throughput.png").is_file()


def test_no_throughput_figure_where_no_run_recorded_one(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "cached"
    _store_run(out, tiny_voc, "a", _scores(tiny_voc, 0.9, 0), throughput={"train_images_per_s": None})
    assert _throughput_part(out) == "" and not (out / "report" / "map_vs_throughput.png").exists()
