"""``python -m voc``: labels, evaluate (against sklearn), and its error messages."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from light_probe import probe
from sklearn.metrics import average_precision_score
from voc_tree import write_voc_tree

from voc.cli import main
from voc.constants import VOC_CLASSES

IMAGES = {
    "a1": [("dog", False), ("person", True)],
    "a2": [("cat", False), ("cat", True)],
    "a3": [("person", False), ("car", False)],
}


def _write_csv(path: Path, ids: list[str], values: np.ndarray, columns: tuple[str, ...] = VOC_CLASSES) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image_id", *columns])
        for image_id, row in zip(ids, values, strict=False):
            writer.writerow([image_id, *row])
    return path


def _labels_csv(capsys: pytest.CaptureFixture[str], *args: str) -> list[list[str]]:
    assert main(["labels", *args]) == 0
    return list(csv.reader(capsys.readouterr().out.splitlines()))


@pytest.mark.parametrize(("policy", "person_a1"), [("negative", "0"), ("ignore", "-1"), ("positive", "1")])
@pytest.mark.parametrize("source", ["annotations", "imagesets"])
def test_labels_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str, person_a1: str, source: str
) -> None:
    write_voc_tree(tmp_path, IMAGES, splits={"train": ["a1", "a2", "a3"]})
    rows = _labels_csv(
        capsys, "--root", str(tmp_path), "--year", "2012", "--split", "train", "--source", source, "--difficult", policy
    )
    assert rows[0] == ["image_id", *VOC_CLASSES]
    by_id = {r[0]: dict(zip(VOC_CLASSES, r[1:], strict=False)) for r in rows[1:]}
    assert list(by_id) == ["a1", "a2", "a3"]
    assert by_id["a1"]["dog"] == "1" and by_id["a1"]["person"] == person_a1
    assert by_id["a2"]["cat"] == "1"  # one non-difficult cat is enough
    assert by_id["a3"]["person"] == "1" and by_id["a3"]["car"] == "1" and by_id["a3"]["dog"] == "0"


def test_labels_from_imagesets_need_no_annotations_or_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_voc_tree(tmp_path, IMAGES, splits={"val": ["a1", "a2"]}, jpegs=False, annotations=False)
    rows = _labels_csv(capsys, "--root", str(tmp_path), "--year", "2012", "--split", "val", "--source", "imagesets")
    assert [r[0] for r in rows[1:]] == ["a1", "a2"]


def test_labels_real_voc2007_lists(voc_fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = voc_fixtures / "VOC2007-imagesets-full"
    rows = _labels_csv(capsys, "--root", str(root), "--year", "2007", "--split", "test", "--source", "imagesets")
    assert len(rows) == 1 + 4952


def test_evaluate_matches_independent_sklearn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    n = 60
    ids = [f"img{i:03d}" for i in range(n)]
    labels = (rng.random((n, 20)) < 0.3).astype(int)
    labels[rng.random((n, 20)) < 0.05] = -1
    labels[:, 5] = np.where(labels[:, 5] == 1, 0, labels[:, 5])  # bus: no positive at all
    scores = np.round(rng.random((n, 20)), 2)
    # rows and columns shuffled in the scores file: matched by id and name
    order = rng.permutation(n)
    cols = list(VOC_CLASSES)[::-1]
    scores_path = _write_csv(tmp_path / "s.csv", [ids[i] for i in order], scores[order][:, ::-1], tuple(cols))
    labels_path = _write_csv(tmp_path / "l.csv", ids, labels)
    assert main(["evaluate", "--scores", str(scores_path), "--labels", str(labels_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    expected_ap = {}
    for c, name in enumerate(VOC_CLASSES):
        keep = labels[:, c] != -1
        if (labels[keep, c] == 1).any():
            expected_ap[name] = average_precision_score(labels[keep, c], scores[keep, c])
    for name, ap in expected_ap.items():
        assert result["per_class"][name]["ap"] == pytest.approx(ap)
    assert result["per_class"]["bus"]["ap"] is None
    assert result["classes_without_positives"] == ["bus"]
    assert result["mAP"] == pytest.approx(np.mean(list(expected_ap.values())))
    keep = labels != -1
    assert result["accuracy"] == pytest.approx(((scores > 0.5) == (labels == 1))[keep].mean())
    assert result["n_images"] == n
    for key in ("map_voc07", "tail_accuracy", "CP", "CR", "CF1", "OP", "OR", "OF1", "tail_curve"):
        assert key in result


def test_evaluate_mismatched_ids_is_an_error_naming_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = _write_csv(tmp_path / "s.csv", ["x1", "x2"], np.full((2, 20), 0.5))
    labels_path = _write_csv(tmp_path / "l.csv", ["x1", "x3"], np.zeros((2, 20), dtype=int))
    assert main(["evaluate", "--scores", str(s), "--labels", str(labels_path)]) == 2
    err = capsys.readouterr().err
    assert "x3" in err and "x2" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("image_id,aeroplane\nx1,0.5\n", "lacks column"),
        (
            "image_id," + ",".join(VOC_CLASSES)
            + "\nx1," + ",".join(["0.5"] * 20)
            + "\nx1," + ",".join(["0.5"] * 20) + "\n",
            "listed twice",
        ),
        ("image_id," + ",".join(VOC_CLASSES) + "\nx1," + ",".join(["abc"] * 20) + "\n", "not a number"),
    ],
)
def test_evaluate_bad_scores_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, match: str) -> None:
    s = tmp_path / "s.csv"
    s.write_text(content)
    labels_path = _write_csv(tmp_path / "l.csv", ["x1"], np.zeros((1, 20), dtype=int))
    assert main(["evaluate", "--scores", str(s), "--labels", str(labels_path)]) == 2
    err = capsys.readouterr().err
    assert match in err and str(s) in err


def test_evaluate_scores_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = _write_csv(tmp_path / "s.csv", ["x1"], np.full((1, 20), 1.5))
    labels_path = _write_csv(tmp_path / "l.csv", ["x1"], np.zeros((1, 20), dtype=int))
    assert main(["evaluate", "--scores", str(s), "--labels", str(labels_path)]) == 2
    assert "[0, 1]" in capsys.readouterr().err


def test_missing_root_error_says_how_to_get_voc(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "voc", "labels", "--root", str(tmp_path / "nope"), "--year", "2012", "--split", "train"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "python -m voc download" in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_loads_neither_torch_nor_lightning(tmp_path: Path) -> None:
    """``python -m voc evaluate`` scores a CSV pair without importing torch or Lightning (seconds to import)."""
    rng = np.random.default_rng(0)
    ids = [f"img{i}" for i in range(8)]
    s = _write_csv(tmp_path / "s.csv", ids, rng.random((8, 20)))
    labels_path = _write_csv(tmp_path / "l.csv", ids, (rng.random((8, 20)) < 0.5).astype(int))
    script = "import sys\nfrom voc.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    run = probe(script, "evaluate", "--scores", str(s), "--labels", str(labels_path))
    assert run.heavy == [], run.proc.stderr
    assert run.code == 0, run.proc.stderr
    assert json.loads(run.proc.stdout)["n_images"] == 8


def test_compare_is_a_paired_bootstrap_of_two_predictions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    ids = [f"i{k:03d}" for k in range(60)]
    labels = np.where(rng.random((60, len(VOC_CLASSES))) < 0.3, 1, 0)
    labels[:2] = 1  # every class has a positive
    noise = rng.random(labels.shape)
    good = _write_csv(tmp_path / "good.csv", ids, np.clip(0.7 * labels + 0.3 * noise, 0, 1))
    blind = _write_csv(tmp_path / "blind.csv", ids, noise)
    truth = _write_csv(tmp_path / "labels.csv", ids, labels)

    def compare(a: Path, b: Path) -> dict:
        argv = ["compare", "--scores", str(a), "--than", str(b), "--labels", str(truth), "--resamples", "200"]
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)

    same = compare(good, good)
    # every resample ties
    assert [same[d]["p_not_better"] for d in ("sklearn", "voc07", "voc12")] == [0.5, 0.5, 0.5]
    better, worse = compare(good, blind), compare(blind, good)
    # scores 0.7 apart from the noise rank every positive first: the good model wins on every resample
    assert better["sklearn"]["p_not_better"] == 0.0 and worse["sklearn"]["p_not_better"] == 1.0
    assert better["sklearn"]["map"] == 1.0
    expected = np.mean([average_precision_score(labels[:, c], noise[:, c]) for c in range(len(VOC_CLASSES))])
    assert better["sklearn"]["map_than"] == pytest.approx(expected, abs=1e-12)
    assert worse["voc07"]["map"] == better["voc07"]["map_than"]


def test_compare_of_files_on_other_images_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = _write_csv(tmp_path / "labels.csv", ["a", "b"], np.ones((2, len(VOC_CLASSES))))
    scores = _write_csv(tmp_path / "s.csv", ["a", "b"], np.full((2, len(VOC_CLASSES)), 0.5))
    other = _write_csv(tmp_path / "o.csv", ["a", "c"], np.full((2, len(VOC_CLASSES)), 0.5))
    assert main(["compare", "--scores", str(scores), "--than", str(other), "--labels", str(labels)]) == 2
    assert "o.csv" in capsys.readouterr().err
