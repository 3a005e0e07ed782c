"""The reporting side runs without the training stack: rebuilding a leaderboard and a report from
stored runs loads neither torch nor Lightning, timm or torchvision."""

from __future__ import annotations

from pathlib import Path

from light_probe import ROOT, probe

_SCRIPT = """
import sys
from pathlib import Path

import numpy as np

import bench.report
from bench.report import gallery, plots, summary
from bench.report.leaderboard import write_leaderboard
from bench.report.markdown import ALL_MODELS, DEFAULT_K, ReportOptions, check_gallery_models, write_report
from bench.store import LEADERBOARD_CSV, LEADERBOARD_MD, REPORT_DIR, REPORT_MD, RunRecord, read_runs, write_run
from voc.constants import VOC_CLASSES
from voc.metrics import evaluate

out = Path(sys.argv[1])
rng = np.random.default_rng(0)
labels = (rng.random((12, len(VOC_CLASSES))) < 0.3).astype(np.int64)
labels[0] = 1  # every class has a positive
ids = [f"img{k:02d}" for k in range(len(labels))]
for k, (model, quality) in enumerate((("good", 0.8), ("bad", 0.2))):
    scores = np.clip(quality * labels + (1 - quality) * rng.random(labels.shape), 0, 1)
    dataset = {"kind": "voc", "root": str(out / "no-voc-tree"), "year": "2012", "train_split": "train",
               "eval_split": "val", "description": "fabricated"}  # no images: the report says so, no gallery
    record = RunRecord(model=model, status="ok", weights="random init", dataset=dataset,
                       config={"name": "course", "epochs": 1, "seed": 0}, metrics=evaluate(scores, labels),
                       throughput={"train_images_per_s": 10.0 * (k + 1), "eval_images_per_s": 40.0}, params=1000,
                       command="python benchmark.py --models good bad")
    write_run(out / model, record, ids, scores, labels)
write_run(out / "broken", RunRecord(model="broken", status="failed", error="RuntimeError: boom", dataset=dataset,
                                    config={"name": "course", "epochs": 1, "seed": 0}))

check_gallery_models([ALL_MODELS], [r.record.model for r in read_runs(out)])
md, csv = write_leaderboard(out)
report = write_report(out, ReportOptions(gallery_k=DEFAULT_K))
assert (md.name, csv.name, report.name) == (LEADERBOARD_MD, LEADERBOARD_CSV, REPORT_MD)
assert "| 1      | good" in md.read_text() and "broken" in md.read_text()
assert (out / REPORT_DIR / "per_class_ap.png").is_file() and (out / REPORT_DIR / "pr_curves.png").is_file()
"""


def test_report_and_store_load_no_training_stack(tmp_path: Path) -> None:
    run = probe(_SCRIPT, str(tmp_path / "results"), cwd=ROOT)
    assert run.code == 0, run.proc.stderr
    assert run.heavy == [], f"the reporting side imported {' '.join(run.heavy)}"
