"""Two-process DDP on the CPU (gloo): gathered metrics equal a single-process evaluation."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from voc_tree import write_voc_tree

from bench.model import build_classifier
from bench.protocols.finetune import COURSE_PROTOCOL
from bench.weights import Weights
from voc.constants import VOC_CLASSES
from voc.datamodule import VOCDataModule
from voc.module import MultiLabelClassifier

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ddp_two_processes_match_single_process_eval(tmp_path: Path) -> None:
    rng = random.Random(1)
    images = {f"img{k:03d}": [(rng.choice(VOC_CLASSES), False)] for k in range(23)}
    ids = list(images)
    # 7 eval images over 2 ranks: the distributed sampler pads one duplicate, which must be dropped
    write_voc_tree(tmp_path / "voc", images, splits={"train": ids[:16], "val": ids[16:]}, image_size=(64, 48))
    out = tmp_path / "results"
    cmd = [
        sys.executable, str(ROOT / "benchmark.py"), "--models", "test_resnet", "--data", str(tmp_path / "voc"),
        "--out", str(out), "--resize", "32", "--crop", "32", "--crops", "full", "--epochs", "1", "--batch-size", "4",
        "--eval-batch-size", "2", "--pretrained", "none", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
        "--num-workers", "0", "--precision", "32-true", "--no-baseline",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "test_resnet" / "result.json").read_text())
    assert record["status"] == "ok", record["error"]
    assert record["metrics"]["n_images"] == 7
    predictions = (out / "test_resnet" / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 7  # every eval image exactly once

    # the same weights, evaluated in this single process
    model, cfg = build_classifier("test_resnet", Weights("random", "random init"), input_size=32)
    module = MultiLabelClassifier.load_from_checkpoint(
        out / "test_resnet" / "checkpoints" / "last.ckpt", model=model, map_location="cpu"
    )
    protocol = COURSE_PROTOCOL.with_overrides(resize=32, crop=32, crop_mode="full")  # what the command ran
    datamodule = VOCDataModule(
        tmp_path / "voc",
        labels=protocol.label_config(),
        transform=protocol.transform_config(cfg.mean, cfg.std, cfg.interpolation),
        eval_batch_size=3,
        num_workers=0,
    )
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, precision="32-true")
    torch.manual_seed(0)
    trainer.test(module, datamodule=datamodule, verbose=False)
    single = module.eval_metrics
    assert single is not None
    for key in ("mAP", "accuracy", "map_voc07", "CF1", "OF1", "n_images"):
        assert single[key] == record["metrics"][key] or abs(single[key] - record["metrics"][key]) < 1e-6, key
    for name in VOC_CLASSES:
        a, b = single["per_class"][name]["ap"], record["metrics"]["per_class"][name]["ap"]
        assert (a is None and b is None) or abs(a - b) < 1e-6, name
