"""Adding a frozen protocol is its module plus one line in the registry (docs/architecture.md): a
throw-away protocol with one setting of its own and that setting's flag, written by the test to a
temporary package, registered by one more entry of ``bench.protocols.MODULES``, and run end to end
through the command line on a tiny tree. No other file of the project is touched."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from voc_tree import cached_features, linear_flags, linear_tree

import bench.protocols
from bench.cli import main, parse_args
from bench.protocols import FROZEN, names, registry
from bench.store import PREDICTIONS_FILE, RESULT_FILE
from voc.labels import load_labels
from voc.tables import read_class_csv

CENTROID_MODULE = '''
"""centroid: each class scored by the cosine similarity of an image's feature to the mean feature
of the class's training positives, through a sigmoid of temperature T."""

from dataclasses import dataclass

import numpy as np

from bench.protocols.settings import FrozenProtocol
from bench.protocols.spec import FrozenSpec, Option, Scored, positive_float
from voc.metrics import evaluate


@dataclass(frozen=True)
class CentroidProtocol(FrozenProtocol):
    name: str = "centroid"
    temperature: float = 0.1


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centroid_scores(train, labels, evals, temperature):
    positive = (np.asarray(labels) == 1).astype(np.float64)
    centroids = unit(positive.T @ unit(train))
    return (1 / (1 + np.exp(-(unit(evals) @ centroids.T) / temperature))).astype(np.float32)


class CentroidSpec(FrozenSpec):
    name = "centroid"
    help = "cosine similarity to each class's mean training feature"
    settings = CentroidProtocol
    options = (Option("temperature", type=positive_float, metavar="T", help="the sigmoid's temperature"),)

    def describe(self, protocol):
        return f"class centroids, T {protocol.temperature:g}"

    def score(self, features, protocol, n_jobs):
        scores = centroid_scores(features.train_features, features.train_labels, features.eval_features,
                                 protocol.temperature)
        return Scored(scores, evaluate(scores, features.eval_labels), {"centroid": {"T": protocol.temperature}})


SPEC = CentroidSpec()
'''


@pytest.fixture
def centroid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The throw-away protocol's module written and registered: the module, and the one registry line."""
    package = tmp_path / "plugins"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "centroid.py").write_text(CENTROID_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bench.protocols, "MODULES", (*bench.protocols.MODULES, "plugins.centroid"))
    registry.cache_clear()
    yield importlib.import_module("plugins.centroid")
    registry.cache_clear()
    for name in ("plugins.centroid", "plugins"):
        sys.modules.pop(name, None)


def _run_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    return capsys.readouterr().out


def test_the_registered_module_is_a_frozen_protocol_with_its_flag(
    centroid: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert names(FROZEN)[-1] == "centroid"
    text = " ".join(_run_help(capsys).split())
    assert "--temperature T centroid: the sigmoid's temperature" in text
    assert "centroid: cosine similarity to each class's mean training feature" in text
    assert parse_args(["--protocol", "centroid", "--temperature", "0.5"]).temperature == 0.5


def test_it_runs_end_to_end_with_its_setting_recorded(centroid, tmp_path: Path) -> None:  # noqa: ANN001
    root, _ = linear_tree(tmp_path / "voc", 40, 12)
    out = tmp_path / "results"
    flags = linear_flags(root, out)
    del flags[flags.index("--n-jobs"):flags.index("--n-jobs") + 2]  # a probes' flag: centroid fits nothing
    assert main(["--protocol", "centroid", "--temperature", "0.5", *flags]) == 0
    record = json.loads((out / "test_resnet-centroid" / RESULT_FILE).read_text())
    assert record["status"] == "ok", record["error"]
    assert (record["config"]["name"], record["config"]["temperature"]) == ("centroid", 0.5)
    assert record["centroid"] == {"T": 0.5}
    # the predictions are the module's scores of the features the run cached
    features = cached_features(record)
    train_ids, train_labels = load_labels(root, "2012", "train", difficult="ignore")
    assert features["train"][1] == train_ids
    expected = centroid.centroid_scores(features["train"][0], train_labels, features["val"][0], 0.5)
    predictions = read_class_csv(out / "test_resnet-centroid" / PREDICTIONS_FILE, "predictions")
    np.testing.assert_allclose(predictions.loc[features["val"][1]].to_numpy(), expected, atol=1e-6)
    leaderboard = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "--protocol centroid --temperature 0.5" in leaderboard and "| test_resnet " in leaderboard


def test_its_flag_is_refused_by_the_other_protocols(
    centroid: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--protocol", "linear", "--temperature", "0.5", "--out", str(tmp_path)]) == 2
    assert "--temperature: only for --protocol centroid, not --protocol linear" in capsys.readouterr().err
    assert main(["--temperature", "0.5", "--out", str(tmp_path)]) == 2
    assert "--temperature: only for --protocol centroid (this run fine-tunes)" in capsys.readouterr().err


def test_the_registry_is_itself_again_afterwards(capsys: pytest.CaptureFixture[str]) -> None:
    assert "centroid" not in names() and "--temperature" not in _run_help(capsys)
