"""``python benchmark.py --protocol linear | lowshot`` end to end on tiny VOC trees with a tiny timm
model, the frozen protocols' defaults and flags, and the flag combinations that stop before any work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from voc_tree import LINEAR_SIZE, write_annotation
from voc_tree import linear_flags as _flags
from voc_tree import linear_tree as _tree

from bench.cli import main, parse_args
from bench.cli.settings import frozen_protocol_from_args
from bench.data import DataSource
from bench.frozen.recipes import SVM_COSTS, VISSL_VOC07_SVM_COSTS
from bench.protocols import frozen_spec
from bench.protocols.linear import LinearProtocol
from bench.protocols.settings import SYNTHETIC_SPLITS, FrozenProtocol
from bench.store import LABELS_FILE, LEADERBOARD_MD, PREDICTIONS_FILE, SPEED_DATA_FILE, SPEED_FILE
from voc.constants import VOC_CLASSES
from voc.metrics import evaluate
from voc.tables import align, read_class_csv

REAL = DataSource(root=Path("/voc"))
SYNTHETIC = DataSource(root=Path("/synthetic"), synthetic={"seed": 0, "n_train": 4, "n_val": 2, "year": "2012"})


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def _rescored(run_dir: Path) -> dict:
    """``python -m voc evaluate``'s computation on the run's own predictions.csv and labels.csv."""
    scores = read_class_csv(run_dir / PREDICTIONS_FILE, "predictions")
    labels = read_class_csv(run_dir / LABELS_FILE, "labels").sort_index()
    s, y = align(scores, labels, run_dir / PREDICTIONS_FILE, run_dir / LABELS_FILE)
    return evaluate(s, y)


def test_speed_times_feature_extraction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``speed --protocol linear``: model-only and end-to-end extraction of the eval view over every
    timed step (the 12-image split cycled), repeated, and the view's loader alone."""
    root, _ = _tree(tmp_path / "voc", 20, 12)
    out = tmp_path / "results"
    steps, repeats = 5, 2
    flags = ["--models", "test_resnet", "--data", str(root), "--year", "2012", "--train-split", "train",
             "--eval-split", "val", "--resize", "32", "--num-workers", "0", "--out", str(out)]  # speed: random init
    assert main(["speed", "--protocol", "linear", "--speed-steps", str(steps), "--speed-repeats", str(repeats),
                 "--eval-batch-size", "4", "--compile", "off", "--target-rate", "50", *flags]) == 0
    [row] = json.loads((out / SPEED_FILE).read_text())
    assert row["model"] == "test_resnet" and row["timed_steps"] == steps and row["workers"] == 0
    assert "batch 4 x 1 x 3 x 32 x 32" in row["shape"] and row["compile"]["compiled"] is False
    assert row["model_only_timing"] == "paired"  # on the CPU: a model-only step after every batch
    assert len(row["repeats"]) == repeats
    for repeat in row["repeats"]:
        assert repeat["model_only_eval_images_per_s"] > 0 and repeat["e2e_eval_images_per_s"] > 0
        assert repeat["eval_e2e_over_model_only"] == pytest.approx(
            repeat["e2e_eval_images_per_s"] / repeat["model_only_eval_images_per_s"], rel=0.01)
    assert "model_only_train_images_per_s" not in row  # extraction has no training side
    measured = json.loads((out / SPEED_DATA_FILE).read_text())
    assert [r["stage"] for r in measured["data_only"]] == ["eval"] * len(measured["data_only"])
    assert {r["rate_of"] for r in measured["feed"]} == {"--target-rate", "test_resnet"}
    printed = capsys.readouterr().out
    assert "eval img/s e2e" in printed and "img/s per worker" in printed
    assert not (out / "test_resnet-linear").exists()  # a speed run writes no record


@pytest.mark.slow
def test_linear_protocol_through_the_command_line(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path / "voc", 40, 12)
    out = tmp_path / "results"
    assert main(["--protocol", "linear", *_flags(root, out)]) == 0
    record = _record(out / "test_resnet-linear")
    assert record["status"] == "ok", record["error"]
    config = record["config"]
    assert (config["name"], config["probe"], config["costs"]) == ("linear", "svm", list(SVM_COSTS))
    assert (config["resize"], config["crop_mode"], config["difficult"], config["positive_only"]) == (
        32, "full", "ignore", False)
    probe = record["probe"]
    assert probe["name"] == "svm" and probe["grid"] == list(SVM_COSTS)
    assert list(probe["chosen_C"]) == list(VOC_CLASSES)
    assert all(c in SVM_COSTS for c in probe["chosen_C"].values())  # every class has 2+ positives
    assert probe["cv"]["split"] == "train" and probe["cv"]["n_splits"] == 3
    assert record["features"]["view"]["resize"] == 32 and record["features"]["view"]["hflip"] is False
    assert record["metrics"] == _rescored(out / "test_resnet-linear")
    assert record["dataset"]["n_train_images"] == 40 and record["dataset"]["n_eval_images"] == 12
    baseline = _record(out / "prior-baseline-linear")
    assert baseline["status"] == "ok" and baseline["config"]["name"] == "linear"
    assert (out / LEADERBOARD_MD).is_file()
    assert len(list((out / ".features").glob("*.npy"))) == 2

    # a second run with another probe and C grid reuses the features of the first
    other = tmp_path / "other"
    flags = _flags(root, other, "--probe", "logreg", "--probe-costs", "1", "0.01", "--feature-cache",
                   str(out / ".features"), "--no-baseline")
    assert main(["--protocol", "linear", *flags]) == 0
    record = _record(other / "test_resnet-linear")
    assert record["status"] == "ok", record["error"]
    assert (record["config"]["probe"], record["config"]["costs"]) == ("logreg", [0.01, 1.0])
    assert set(record["probe"]["chosen_C"].values()) <= {0.01, 1.0} and record["probe"]["cv"]["n_splits"] == 5
    assert {s["from_cache"] for s in record["features"]["cache"].values()} == {True}
    assert not (other / ".features").exists()


@pytest.mark.slow
def test_permuted_eval_labels_leave_every_chosen_c_unchanged(tmp_path: Path) -> None:
    root, images = _tree(tmp_path / "voc", 40, 12, seed=1)
    out = tmp_path / "results"
    flags = _flags(root, out, "--no-baseline")
    assert main(["--protocol", "linear", *flags]) == 0
    before = _record(out / "test_resnet-linear")
    val = list(images)[40:]
    shuffled = val[1:] + val[:1]  # each eval image gets the next one's objects
    for image_id, source in zip(val, shuffled, strict=True):
        write_annotation(root / "VOCdevkit" / "VOC2012" / "Annotations" / f"{image_id}.xml", image_id, images[source],
                         LINEAR_SIZE)
    assert main(["--protocol", "linear", *flags]) == 0
    after = _record(out / "test_resnet-linear")
    assert after["probe"]["chosen_C"] == before["probe"]["chosen_C"]
    assert after["probe"]["cv_score"] == before["probe"]["cv_score"]
    assert after["metrics"] != before["metrics"]  # the labels did change what is scored
    assert (out / "test_resnet-linear" / PREDICTIONS_FILE).is_file()


def test_lowshot_protocol_through_the_command_line(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path / "voc", 60, 12)
    out = tmp_path / "results"
    flags = _flags(root, out, "--lowshot-k", "1", "2", "4", "--probe-costs", "0.5")
    assert main(["--protocol", "lowshot", *flags]) == 0
    run_dir = out / "test_resnet-lowshot"
    record = _record(run_dir)
    assert record["status"] == "ok", record["error"]
    config = record["config"]
    assert (config["name"], config["probe"], config["fixed_cost"], config["k_values"]) == ("lowshot", "svm", 0.5,
                                                                                          [1, 2, 4])
    assert "costs" not in config  # lowshot fits use the fixed C only
    lowshot = record["lowshot"]
    assert lowshot["k_values_run"] == [1, 2]  # 3 positives per class at most: k = 4 cannot be served
    assert [s["k"] for s in lowshot["skipped_k"]] == [4] and "positives" in lowshot["skipped_k"][0]["reason"]
    assert [(r["k"], r["sample"]) for r in lowshot["runs"]] == [(k, s) for k in (1, 2) for s in range(1, 6)]
    k2 = [r["map_voc12"] for r in lowshot["runs"] if r["k"] == 2]
    assert lowshot["summary"][1]["map_voc12"]["mean"] == pytest.approx(np.mean(k2), abs=1e-12)
    assert lowshot["metrics_are"] == "sample 1 at k=2 (predictions.csv holds its scores)"
    assert record["metrics"] == _rescored(run_dir)
    assert record["metrics"]["mAP"] == lowshot["runs"][5]["mAP"]
    assert record["probe"]["C"] == 0.5


# -- defaults, flags, errors ------------------------------------------------------------------


def _frozen(argv: list[str], data: DataSource) -> FrozenProtocol:
    return frozen_protocol_from_args(parse_args(argv), data)


def test_defaults_are_vissls_voc07_benchmark_and_its_synthetic_variant() -> None:
    assert _frozen(["--protocol", "linear"], REAL) == LinearProtocol()
    assert _frozen(["--protocol", "lowshot"], REAL) == frozen_spec("lowshot").default(False)
    assert _frozen(["--protocol", "linear"], SYNTHETIC) == LinearProtocol(**SYNTHETIC_SPLITS)
    assert _frozen(["--protocol", "lowshot"], SYNTHETIC) == frozen_spec("lowshot").default(True)
    p = LinearProtocol()
    assert (p.year, p.train_split, p.eval_split, p.resize, p.crop_mode, p.input_size) == (
        "2007", "trainval", "test", 224, "full", 224)
    assert p.cost_grid == SVM_COSTS and p.recipe.folds == 3
    assert SVM_COSTS == (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)  # VISSL's values that are powers of ten
    assert set(SVM_COSTS) <= set(VISSL_VOC07_SVM_COSTS) and len(VISSL_VOC07_SVM_COSTS) == 11
    assert p.recipe.class_weight == ((1, 2.0), (-1, 1.0))
    lowshot = frozen_spec("lowshot").default(False)
    assert lowshot.k_values == (1, 2, 4, 8, 16, 32, 64, 96) and lowshot.samples == 5
    assert lowshot.negatives_per_positive == 19
    s = LinearProtocol(**SYNTHETIC_SPLITS)
    assert (s.year, s.train_split, s.eval_split, s.resize) == ("2012", "train", "val", 224)
    config = p.transform_config()
    assert (config.hflip, config.rotation) == (False, 0.0)


@pytest.mark.parametrize(
    ("argv", "field", "expected"),
    [
        (["--protocol", "linear", "--probe", "logreg"], "probe", "logreg"),
        (["--protocol", "linear", "--probe-costs", "5", "0.5", "5"], "costs", (0.5, 5.0)),
        (["--protocol", "lowshot", "--probe-costs", "0.25"], "fixed_cost", 0.25),
        (["--protocol", "lowshot", "--lowshot-k", "4", "1"], "k_values", (1, 4)),
        (["--protocol", "linear", "--eval-batch-size", "3"], "batch_size", 3),
        (["--protocol", "linear", "--crops", "ten", "--resize", "256"], "crop_mode", "ten"),
        (["--protocol", "linear", "--precision", "32-true"], "precision", "32-true"),
        (["--protocol", "linear", "--difficult", "negative"], "difficult", "negative"),
        (["--protocol", "linear", "--seed", "3"], "seed", 3),
    ],
)
def test_flags_set_the_frozen_protocol(argv: list[str], field: str, expected: object) -> None:
    assert getattr(_frozen(argv, REAL), field) == expected


def test_the_grid_follows_the_probe_unless_given() -> None:
    assert _frozen(["--protocol", "linear", "--probe", "logreg"], REAL).cost_grid == tuple(
        10.0**e for e in range(-6, 6))
    assert _frozen(["--protocol", "linear", "--probe", "logreg", "--probe-costs", "2"], REAL).cost_grid == (2.0,)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--probe", "svm"], "--probe: only for --protocol linear or lowshot"),
        (["--feature-cache", "x", "--n-jobs", "2"], "--n-jobs, --feature-cache: only for --protocol linear"),
        (["--protocol", "linear", "--epochs", "2", "--lr", "0.1"], "--epochs, --lr: --protocol linear trains no"),
        (["--protocol", "lowshot", "--batch-size", "4"], "--batch-size: --protocol lowshot trains no backbone"),
        (["speed", "--protocol", "linear", "--speed-course-loop"], "--speed-course-loop: time the fine-tuning"),
        (["speed", "--protocol", "linear", "--speed-workers", "0"], "--speed-workers: time the fine-tuning"),
        (["speed", "--protocol", "linear", "--speed-threads", "1"], "--speed-threads: time the fine-tuning"),
        (["speed", "--protocol", "linear", "--deterministic"], "--deterministic: --protocol linear runs no"),
        (["--protocol", "linear", "--devices", "2"], "--devices: --protocol linear runs no training"),
        (["--protocol", "linear", "--n-jobs", "0"], "--n-jobs: give -1"),
        (["--loader-threads", "2", "--num-workers", "0"], "--loader-threads: only for --protocol linear, lowshot or"),
        (["--protocol", "linear", "--loader-threads", "2", "--num-workers", "1"], "--loader-threads 2: give a count"),
        (["--protocol", "linear", "--loader-threads", "0"], "--loader-threads 0: give a count >= 1, without"),
        (["--protocol", "linear", "--seeds", "0", "-1"], "no negative seed [-1]"),
        (["--protocol", "linear", "--lowshot-k", "2"], "--lowshot-k: only for --protocol lowshot, not --protocol"),
        (["--protocol", "knn", "--probe", "svm"], "--probe: only for --protocol linear or lowshot, not --protocol knn"),
        (["--protocol", "knn", "--probe-costs", "1"], "--probe-costs: only for --protocol linear or lowshot, not"),
        (["--probe", "svm", "--n-jobs", "2"], "--probe, --n-jobs: only for --protocol linear or lowshot (this run"),
        (["--protocol", "lowshot", "--probe-costs", "1", "2"], "--probe-costs: --protocol lowshot fits every sample"),
        (["--protocol", "lowshot", "--lowshot-k", "0"], "low-shot k values must be positive"),
        (["--protocol", "linear", "--crops", "five", "--resize", "100"], "crop (224) must not exceed resize (100)"),
    ],
)
def test_bad_combinations_stop_before_any_work(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    assert main([*argv, "--models", "test_resnet", "--data", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_probe_costs_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--protocol", "linear", "--probe-costs", "0"])
    assert "must be a positive number" in capsys.readouterr().err
    with pytest.raises(ValueError, match="probe costs must be positive"):
        LinearProtocol().with_overrides(costs=(-1.0,))
