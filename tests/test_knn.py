"""The ``knn`` protocol (bench/protocols/knn.py): DINO's weighted k-NN vote on cached features, made
multi-label. The vote is checked by hand on three training images, against a loop that redoes the
arithmetic image by image, and end to end through the command line on the features the run cached.
It came in through the protocol interface alone: no other product module names it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from voc_tree import cached_features, linear_flags, linear_tree

import bench.protocols.knn as knn
from bench.cli import main
from bench.protocols import frozen_spec, names
from bench.store import LEADERBOARD_CSV, PREDICTIONS_FILE
from voc.labels import load_labels
from voc.tables import read_class_csv

REPO = Path(__file__).resolve().parents[1]


def test_three_neighbours_by_hand() -> None:
    # cosine to the eval image (1, 0): 1, 0 and 1/sqrt(2); the 2 nearest are the first and the third
    train = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    labels = np.array([[1, 0, -1], [1, 1, 1], [0, 1, 1]])
    scores = knn.knn_scores(train, labels, np.array([[5.0, 0.0]]), k=2, temperature=1.0)
    w1, w3 = math.exp(1.0), math.exp(1 / math.sqrt(2))
    # class 0: only the first holds it; class 1: only the third; class 2: the first is ignored (-1): no vote
    expected = [w1 / (w1 + w3), w3 / (w1 + w3), w3 / (w1 + w3)]
    assert scores[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert expected[0] == pytest.approx(0.5727, abs=1e-4)  # 1 / (1 + e^(1/sqrt(2) - 1))


def _loop_reference(train: np.ndarray, labels: np.ndarray, evals: np.ndarray, k: int, t: float) -> np.ndarray:
    """The vote image by image, in plain Python: sort the training images by cosine, keep k, weigh."""
    out = []
    for x in evals:
        cos = [float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))) for y in train]
        nearest = sorted(range(len(train)), key=lambda i: -cos[i])[:k]
        weights = [math.exp(cos[i] / t) for i in nearest]
        out.append([sum(w for w, i in zip(weights, nearest, strict=True) if labels[i][c] == 1) / sum(weights)
                    for c in range(labels.shape[1])])
    return np.array(out)


def test_the_vote_matches_a_loop_over_images(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    train, evals = rng.normal(size=(60, 8)), rng.normal(size=(7, 8))
    labels = rng.integers(-1, 2, size=(60, 20))
    monkeypatch.setattr(knn, "ROWS_PER_BLOCK", 3)  # three blocks of eval images, the last one short
    scores = knn.knn_scores(train, labels, evals)  # DINO's k = 20, T = 0.07
    assert scores.shape == (7, 20) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, _loop_reference(train, labels, evals, 20, 0.07), atol=1e-6)
    # cosine: scaling any feature vector changes nothing
    scaled = knn.knn_scores(train * rng.uniform(0.1, 10, size=(60, 1)), labels, evals * 3.0)
    np.testing.assert_allclose(scaled, scores, atol=1e-6)
    # more neighbours than training images: all of them vote
    np.testing.assert_allclose(knn.knn_scores(train[:5], labels[:5], evals, k=20),
                               _loop_reference(train[:5], labels[:5], evals, 5, 0.07), atol=1e-6)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="k >= 1"):
        knn.knn_scores(np.ones((2, 2)), np.ones((2, 20)), np.ones((1, 2)), k=0)


def test_registered_with_its_config() -> None:
    assert "knn" in names()
    config = frozen_spec("knn").default(True).to_dict()
    assert config["knn"] == {"k": 20, "temperature": 0.07, "similarity": "cosine"}
    assert not {"probe", "costs", "fixed_cost", "recipe", "k_values"} & set(config)
    assert (config["name"], config["resize"], config["eval_split"]) == ("knn", 224, "val")


def test_knn_through_the_command_line_on_the_cached_features(tmp_path: Path) -> None:
    root, _ = linear_tree(tmp_path / "voc", 40, 12)
    out = tmp_path / "results"
    flags = linear_flags(root, out)
    del flags[flags.index("--n-jobs"):flags.index("--n-jobs") + 2]  # no probe fits: knn takes no --n-jobs
    assert main(["--protocol", "knn", *flags]) == 0
    record = json.loads((out / "test_resnet-knn" / "result.json").read_text())
    assert record["status"] == "ok", record["error"]
    assert record["knn"]["k"] == 20 and record["knn"]["neighbours_used"] == 20
    # the vote redone from the features the run cached and the training labels
    features = cached_features(record)
    train_ids, train_labels = load_labels(root, "2012", "train", difficult="ignore")
    assert features["train"][1] == train_ids
    expected = _loop_reference(features["train"][0].astype(np.float64), train_labels, features["val"][0], 20, 0.07)
    predictions = read_class_csv(out / "test_resnet-knn" / PREDICTIONS_FILE, "predictions").loc[features["val"][1]]
    np.testing.assert_allclose(predictions.to_numpy(), expected, atol=1e-5)
    # its own table in the leaderboard, beside the prior baseline of the same protocol
    board = (out / LEADERBOARD_CSV).read_text()
    assert sum(line.split(",")[1] == "knn" for line in board.splitlines()[1:]) == 2


def test_no_other_product_module_names_it() -> None:
    """The protocol interface is enough: the k-NN protocol is its module and its registration."""
    named = sorted(
        str(path.relative_to(REPO))
        for path in [*(REPO / "bench").rglob("*.py"), *(REPO / "voc").rglob("*.py"), REPO / "benchmark.py"]
        if "knn" in path.read_text(encoding="utf-8").lower()
    )
    assert named == ["bench/protocols/__init__.py", "bench/protocols/knn.py"]


@pytest.mark.parametrize("flags", [["--probe", "svm"], ["--probe-costs", "1"], ["--lowshot-k", "1"], ["--n-jobs", "2"]])
def test_the_probes_flags_stop_a_knn_run(flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--protocol", "knn", "--out", str(tmp_path), *flags]) == 2
    assert f"{flags[0]}: only for --protocol" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
