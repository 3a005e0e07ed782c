"""LP-FT and the fine-tuning settings it needs: the probe head, frozen batch norm, flip TTA, the
stage-1 faults (too few positives, resuming between and during the stages)."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader
from voc_tree import linear_tree

from bench.data import DataSource
from bench.model import build_classifier
from bench.protocols.finetune import CPU_LPFT_PROTOCOL, LPFT_PROTOCOL
from bench.store import CHECKPOINT_DIR
from bench.train import head as head_module
from bench.train.experiment import TrainerOptions, build_experiment
from bench.train.head import HEAD_FILE, HEAD_PROBE_RECIPE, fit_head, prior_log_odds
from bench.train.runner import run_model, starting_head
from bench.weights import Weights
from voc.module import MultiLabelClassifier

RANDOM = Weights("random", "random init")
OPTIONS = TrainerOptions(accelerator="cpu", num_workers=0)


def _protocol(**changes: object):  # noqa: ANN202 - a bench.protocols.settings.Protocol
    """lpft's synthetic variant at 32 px, fp32, one epoch: seconds on a CPU."""
    settings = {"resize": 32, "crop": 32, "epochs": 1, "batch_size": 8, "eval_batch_size": 16,
                "precision": "32-true", **changes}
    return replace(CPU_LPFT_PROTOCOL, **settings)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 train / 20 val images, every class with 4 training positives (3-fold CV runs for each)."""
    root, _ = linear_tree(tmp_path_factory.mktemp("lpft"), 80, 20)
    return root


def test_lpft_is_the_probe_then_the_whole_network() -> None:
    p = LPFT_PROTOCOL
    assert (p.head_init, p.batchnorm, p.tta) == ("probe", "frozen", "hflip")
    assert (p.scheduler, p.optimizer) == ("cosine", "adamw")
    assert 0 < p.warmup < 1 and p.ema_decay == 0
    assert (p.year, p.train_split, p.eval_split, p.difficult) == ("2007", "trainval", "test", "ignore")


def test_with_a_probe_head_the_model_before_its_first_step_scores_as_the_probe(tree: Path, tmp_path: Path) -> None:
    protocol = _protocol()
    data = DataSource(root=tree)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    start = partial(starting_head, model_name="test_efficientnet", protocol=protocol, data=data, weights=RANDOM,
                    options=OPTIONS, run_dir=run_dir, config_hash="h", resume=False)
    experiment = build_experiment("test_efficientnet", protocol=protocol, data=data, weights=RANDOM, options=OPTIONS,
                                  run_dir=run_dir, start_head=start)
    section = experiment.head.section
    assert section["kind"] == "probe" and section["prior_classes"] == []
    # the eval split's cached stage-1 features, scored by the fitted probe's own decision function
    eval_features = np.load(section["features"]["cache"]["val"]["path"])
    expected = eval_features.astype(np.float64) @ experiment.head.weight.T + experiment.head.bias
    model = experiment.module.model.eval()
    datamodule = experiment.datamodule
    datamodule.setup("test")
    logits = np.zeros_like(expected)
    with torch.no_grad():
        for indices, crops, _ in datamodule.test_dataloader():
            logits[indices.numpy()] = model(crops).numpy()
    assert np.abs(expected).max() > 1.0  # a head that does something
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    # and the recorded probe mAP is that of these scores
    from voc.metrics import evaluate

    labels = datamodule.eval_set.labels
    assert evaluate(1 / (1 + np.exp(-logits)), labels)["mAP"] == pytest.approx(section["eval_metrics"]["mAP"],
                                                                            abs=1e-6)


def test_the_probe_head_is_the_logistic_regression_with_its_scaler_folded_in() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)) * [1.0, 10.0, 0.1, 3.0, 1.0] + [0.0, 5.0, -2.0, 0.0, 1.0]
    labels = np.zeros((60, 2), dtype=np.int64)
    labels[:, 0] = (x[:, 0] + 0.3 * x[:, 1] > 1.5).astype(int)
    labels[:, 1] = (x[:, 2] < -2.0).astype(int)
    head = fit_head(x, labels, seed=0, n_jobs=1, class_names=("a", "b"))
    for c, name in enumerate(("a", "b")):
        entry = head.section["per_class"][name]
        assert entry["how"] == "probe" and entry["C"] in HEAD_PROBE_RECIPE.costs
        reference = make_pipeline(
            StandardScaler(), LogisticRegression(C=entry["C"], tol=HEAD_PROBE_RECIPE.tol,
                                                 max_iter=HEAD_PROBE_RECIPE.max_iter, random_state=0),
        ).fit(x, np.where(labels[:, c] == 1, 1, -1))
        np.testing.assert_allclose(x @ head.weight[c] + head.bias[c], reference.decision_function(x), atol=1e-8)


def test_a_class_with_too_few_positives_for_the_cv_gets_its_prior_and_the_record_names_it() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4))
    labels = np.zeros((40, 3), dtype=np.int64)
    labels[:20, 0] = 1  # 20 positives: fitted
    labels[:2, 1] = 1  # 2 positives: fewer than the 3 folds
    labels[:, 2] = 1  # no negative
    labels[5, 2] = -1  # an ignored entry: left out of the prior
    head = fit_head(x, labels, seed=0, n_jobs=1, class_names=("many", "two", "all"))
    assert head.section["prior_classes"] == ["two", "all"]
    assert head.section["per_class"]["two"]["how"] == "prior"
    assert np.all(head.weight[1:] == 0) and np.any(head.weight[0] != 0)
    # log-odds of (positives + 0.5) / (labelled + 1), by hand
    assert head.bias[1] == pytest.approx(np.log(2.5 / 38.5))
    assert head.bias[2] == pytest.approx(np.log(39.5 / 0.5))  # 39 labelled, all positive
    np.testing.assert_allclose(prior_log_odds(labels)[1:], head.bias[1:])


def _bn_model() -> nn.Module:
    model, _ = build_classifier("test_resnet", RANDOM)
    return model


def _loader(n: int = 8, size: int = 32) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = [(i, torch.randn(1, 3, size, size, generator=g), (torch.rand(20, generator=g) > 0.7).float())
            for i in range(n)]
    return DataLoader(data, batch_size=4)


def _fit(module: MultiLabelClassifier, epochs: int = 2) -> None:
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=_loader())


@pytest.mark.parametrize("mode", ["frozen", "train"])
def test_frozen_batch_norm_keeps_its_statistics_bit_for_bit_and_trains_its_affine_parameters(mode: str) -> None:
    torch.manual_seed(0)
    module = MultiLabelClassifier(_bn_model(), lr=0.05, batchnorm=mode)
    norms = {name: m for name, m in module.model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert norms
    before = {name: (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(),
                     m.weight.detach().clone(), m.bias.detach().clone()) for name, m in norms.items()}
    _fit(module)
    for name, m in norms.items():
        mean, var, tracked, weight, bias = before[name]
        kept = torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert kept == (mode == "frozen"), name
        assert torch.equal(m.num_batches_tracked, tracked) == (mode == "frozen"), name
        assert not torch.equal(m.weight, weight) or not torch.equal(m.bias, bias), name  # the affine part trains
    assert module.model.training  # the rest of the model trains


class _Asymmetric(nn.Module):
    """Logits that depend on which side of the crop is bright, so its mirror image scores otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(8, 20)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.head(crops[:, 0, 0, 0, :8])


def test_flip_tta_averages_the_logits_of_the_crops_and_their_mirror_images() -> None:
    torch.manual_seed(0)
    model = _Asymmetric()
    crops = torch.randn(3, 1, 3, 4, 8)
    both = (model(crops) + model(crops.flip(-1))) / 2
    assert not torch.allclose(model(crops), both)
    module = MultiLabelClassifier(model, tta="hflip")
    torch.testing.assert_close(module.eval_logits(model, crops), both)
    torch.testing.assert_close(MultiLabelClassifier(model).eval_logits(model, crops), model(crops))
    # the evaluation loop scores with it
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    data = [(i, crops[i], torch.ones(20)) for i in range(3)]
    trainer.test(module, dataloaders=DataLoader(data, batch_size=2), verbose=False)
    np.testing.assert_allclose(module.eval_output.scores, torch.sigmoid(both).detach().numpy(), rtol=1e-6)


def test_an_ema_that_cannot_forget_its_start_within_the_run_is_not_reported() -> None:
    torch.manual_seed(0)
    short = MultiLabelClassifier(_Asymmetric(), lr=0.01, ema_decay=0.999, report_model="ema")
    _fit(short, epochs=1)  # 2 steps: 0.998 of the EMA is still the initial weights
    assert short.reported_model == "raw" and "initial weights" in short.report_note
    assert short.ema_run["initial_weight_share"] == pytest.approx(0.999**2)
    horizon = MultiLabelClassifier(_Asymmetric(), lr=0.01, ema_horizon=0.25, report_model="ema")
    _fit(horizon, epochs=10)  # 20 steps, a time constant of 5: e^-4 of the start is left
    assert horizon.ema.decay == pytest.approx(1 - 1 / 5)
    assert horizon.reported_model == "ema" and horizon.report_note is None
    assert horizon.ema_run["initial_weight_share"] == pytest.approx(0.8**20)


def _run(tree: Path, out: Path, resume: bool, **changes: object):  # noqa: ANN202 - a RunRecord
    return run_model("test_efficientnet", protocol=_protocol(epochs=2, **changes), data=DataSource(root=tree),
                     out_dir=out, weights=RANDOM, pretrained="none", options=OPTIONS, resume=resume)


@pytest.mark.slow
def test_resume_between_the_stages_reuses_the_stage_1_head(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(tree, tmp_path, resume=False)
    assert first.ok and first.extra["head_init"]["kind"] == "probe"
    run_dir = tmp_path / "test_efficientnet-lpft"
    assert (run_dir / HEAD_FILE).is_file()
    # killed after stage 1, before any epoch finished: no checkpoint, no record
    (run_dir / "result.json").unlink()
    for ckpt in (run_dir / CHECKPOINT_DIR).iterdir():
        ckpt.unlink()
    monkeypatch.setattr(head_module, "fit_head", _must_not_fit)
    again = _run(tree, tmp_path, resume=True)
    assert again.ok
    assert again.extra["head_init"] == json.loads(json.dumps(first.extra["head_init"]))
    assert again.metrics["mAP"] == pytest.approx(first.metrics["mAP"])  # the same training from the same head


@pytest.mark.slow
def test_resume_during_stage_2_keeps_the_finished_epochs(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(tree, tmp_path, resume=False)
    run_dir = tmp_path / "test_efficientnet-lpft"
    (run_dir / "result.json").unlink()
    checkpoint = torch.load(run_dir / CHECKPOINT_DIR / "last.ckpt", weights_only=False)
    assert checkpoint["epoch"] == 1  # both epochs done: a resume trains no more
    monkeypatch.setattr(head_module, "fit_head", _must_not_fit)
    again = _run(tree, tmp_path, resume=True)
    assert again.ok and again.metrics["mAP"] == pytest.approx(first.metrics["mAP"])


def _must_not_fit(*args: object, **kwargs: object) -> None:
    raise AssertionError("stage 1 fitted again on --resume")
