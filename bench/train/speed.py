"""``python benchmark.py --speed``: model-only against end-to-end throughput, side by side.

Model-only numbers time the crop-max classifier on random tensors of the protocol's shapes (as
timm's ``benchmark.py`` does); end-to-end numbers time our real pipeline (JPEG decode, transforms,
DataLoader, Lightning) at the same shapes, precision and memory layout, with the same steady-state
meter the leaderboard uses. Achieved GFLOP/s are compared with this machine's measured matmul peak.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate
from torch.utils.flop_counter import FlopCounterMode

from bench.data import DataSource
from bench.hardware import resolve_accelerator, resolve_precision
from bench.model import CropMaxClassifier, build_classifier
from bench.protocol import Protocol
from bench.store import SPEED_FILE
from bench.train.experiment import TrainerOptions, build_experiment
from bench.train.throughput import WARMUP_BATCHES
from bench.weights import Weights
from voc.constants import IMAGENET_MEAN, IMAGENET_STD, NUM_CLASSES
from voc.io import write_json_atomic
from voc.module import multilabel_bce_loss

log = logging.getLogger(__name__)

RANDOM_INIT = Weights("random", "random init")
_AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def _device(accelerator: str) -> torch.device:
    return torch.device("cuda" if accelerator in ("gpu", "cuda") else "cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str) -> torch.autocast:
    dtype = _AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def matmul_peak_gflops(precision: str, accelerator: str = "cpu", size: int = 2048, repeats: int = 5) -> float:
    """Best measured GFLOP/s of a square matmul in the precision's compute dtype."""
    device = _device(accelerator)
    dtype = _AUTOCAST_DTYPES.get(precision, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def forward_flops_per_image(model: CropMaxClassifier, crops: int, size: int) -> float:
    """FLOPs of one forward pass over one image's ``crops`` crops (torch's flop counter)."""
    x = torch.randn(1, crops, 3, size, size, device=next(model.parameters()).device)
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops())


def _shapes(protocol: Protocol) -> tuple[int, int]:
    """(crops per image, crop side) of the protocol."""
    return protocol.transform_config().num_crops, protocol.input_size


def model_only_throughput(
    model: CropMaxClassifier, protocol: Protocol, precision: str, accelerator: str, steps: int
) -> tuple[float, float]:
    """(train, eval) images/s of the model alone on random tensors: forward, loss, backward and an
    Adam step per training batch; forward under ``inference_mode`` per eval batch."""
    device = _device(accelerator)
    k, size = _shapes(protocol)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=protocol.lr)

    def timed(batch: int, step: Any) -> float:
        crops = torch.randn(batch, k, 3, size, size, device=device)
        targets = (torch.rand(batch, NUM_CLASSES, device=device) > 0.8).float()
        for _ in range(WARMUP_BATCHES):
            step(crops, targets)
        _sync(device)
        started = time.perf_counter()
        for _ in range(steps):
            step(crops, targets)
        _sync(device)
        return batch * steps / (time.perf_counter() - started)

    def train_step(crops: torch.Tensor, targets: torch.Tensor) -> None:
        with _autocast(device, precision):
            logits = model(crops)
        loss = multilabel_bce_loss(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def eval_step(crops: torch.Tensor, targets: torch.Tensor) -> None:
        with torch.inference_mode(), _autocast(device, precision):
            torch.sigmoid(model(crops).float())

    model.train()
    train = timed(protocol.batch_size, train_step)
    model.eval()
    return train, timed(protocol.eval_batch_size, eval_step)


def end_to_end_throughput(
    model_name: str, protocol: Protocol, data: DataSource, options: TrainerOptions, steps: int
) -> tuple[float, float]:
    """(train, eval) images/s of the real pipeline over ``steps`` batches after the warm-up."""
    batches = WARMUP_BATCHES + steps
    short = replace(protocol, epochs=1, limit_train_batches=batches, limit_eval_batches=batches)
    experiment = build_experiment(model_name, protocol=short, data=data, weights=RANDOM_INIT, options=options)
    experiment.trainer.fit(experiment.module, datamodule=experiment.datamodule)
    experiment.trainer.test(experiment.module, datamodule=experiment.datamodule, verbose=False)
    train, evaluation = experiment.meter.train.images_per_s(), experiment.meter.eval.images_per_s()
    if train is None or evaluation is None:
        raise RuntimeError(f"{model_name}: too few batches to measure throughput")
    return train, evaluation


def course_style_train_throughput(model_name: str, protocol: Protocol, data: DataSource, steps: int) -> float:
    """Training images/s of a straightforward loop in the style of the course project, for comparison:
    fp32, NCHW, torchvision PIL transforms per sample in one DataLoader worker, sigmoid then max over
    the crops, and a Python loop of 20 per-class ``BCELoss`` calls."""
    import timm
    from torch.utils.data import DataLoader
    from torchvision import transforms as T

    from voc.dataset import VOCClassification

    k, size = _shapes(protocol)
    to_tensor = T.Compose([T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    crop = {"five": T.FiveCrop(size), "ten": T.TenCrop(size)}.get(protocol.crop_mode, T.CenterCrop(size))
    transform = T.Compose([
        T.Resize(protocol.resize),
        T.RandomHorizontalFlip(),
        T.RandomRotation(protocol.rotation),
        crop,
        T.Lambda(lambda crops: torch.stack([to_tensor(c) for c in (crops if isinstance(crops, tuple) else (crops,))])),
    ])
    dataset = VOCClassification(data.root, protocol.year, protocol.train_split, transform=transform)
    loader = DataLoader(dataset, batch_size=protocol.batch_size, shuffle=True, num_workers=1)
    model = timm.create_model(model_name, num_classes=NUM_CLASSES)
    optimizer = torch.optim.Adam(model.parameters(), lr=protocol.lr)
    bce = torch.nn.BCELoss()
    batches = iter(loader)
    started, images = 0.0, 0
    for step in range(WARMUP_BATCHES + steps):
        if step == WARMUP_BATCHES:
            started, images = time.perf_counter(), 0
        crops, targets = next(batches)
        batch = crops.shape[0]
        probs = torch.sigmoid(model(crops.view(-1, 3, size, size))).view(batch, crops.shape[1], -1).max(dim=1).values
        loss = sum(bce(probs[:, c], targets[:, c].clamp(min=0)) for c in range(NUM_CLASSES)) / NUM_CLASSES
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        images += batch
    return images / (time.perf_counter() - started)


def measure_speed(
    model_name: str,
    *,
    protocol: Protocol,
    data: DataSource,
    options: TrainerOptions,
    steps: int,
    peak_gflops: float,
    course_loop: bool = False,
) -> dict[str, Any]:
    """One model's row: model-only and end-to-end throughput, their ratios and achieved GFLOP/s."""
    accelerator = resolve_accelerator(options.accelerator)
    precision = resolve_precision(protocol.precision, accelerator)
    k, size = _shapes(protocol)
    torch.manual_seed(protocol.seed)
    model, _ = build_classifier(model_name, RANDOM_INIT, input_size=size)
    flops = forward_flops_per_image(model, k, size)
    only_train, only_eval = model_only_throughput(model, protocol, precision, accelerator, steps)
    del model
    e2e_train, e2e_eval = end_to_end_throughput(model_name, protocol, data, options, steps)
    row = {
        "model": model_name,
        "precision": precision,
        "shape": f"batch {protocol.batch_size}/{protocol.eval_batch_size} x {k} x 3 x {size} x {size}",
        "forward_gflops_per_image": round(flops / 1e9, 3),
        "model_only_train_images_per_s": round(only_train, 3),
        "e2e_train_images_per_s": round(e2e_train, 3),
        "train_e2e_over_model_only": round(e2e_train / only_train, 3),
        "model_only_eval_images_per_s": round(only_eval, 3),
        "e2e_eval_images_per_s": round(e2e_eval, 3),
        "eval_e2e_over_model_only": round(e2e_eval / only_eval, 3),
        # training does about three forward passes' worth of work (forward + 2x in backward)
        "e2e_train_gflops_per_s": round(3 * flops * e2e_train / 1e9, 1),
        "e2e_eval_gflops_per_s": round(flops * e2e_eval / 1e9, 1),
        "matmul_peak_gflops_per_s": round(peak_gflops, 1),
    }
    if course_loop:
        course = course_style_train_throughput(model_name, protocol, data, steps)
        row["course_loop_train_images_per_s"] = round(course, 3)
        row["e2e_train_over_course_loop"] = round(e2e_train / course, 2)
    return row


def speed_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a GitHub markdown table."""
    headers = {
        "model": "model",
        "precision": "precision",
        "model_only_train_images_per_s": "train img/s model-only",
        "e2e_train_images_per_s": "train img/s e2e",
        "train_e2e_over_model_only": "train e2e/model",
        "model_only_eval_images_per_s": "eval img/s model-only",
        "e2e_eval_images_per_s": "eval img/s e2e",
        "eval_e2e_over_model_only": "eval e2e/model",
        "e2e_train_gflops_per_s": "train GFLOP/s",
        "e2e_eval_gflops_per_s": "eval GFLOP/s",
        "matmul_peak_gflops_per_s": "matmul peak GFLOP/s",
        "course_loop_train_images_per_s": "course-style loop train img/s",
        "e2e_train_over_course_loop": "e2e/course-style",
    }
    body = [[row.get(key, "–") for key in headers] for row in rows]
    return tabulate(body, headers=list(headers.values()), tablefmt="github")


def run_speed(
    models: Sequence[str],
    *,
    protocol: Protocol,
    data: DataSource,
    out_dir: str | Path,
    options: TrainerOptions = TrainerOptions(),
    steps: int = 20,
    course_loop: bool = False,
) -> list[dict[str, Any]]:
    """Measure every model; writes ``speed.json`` in ``out_dir``. A failing model gets an error row."""
    accelerator = resolve_accelerator(options.accelerator)
    peak = matmul_peak_gflops(resolve_precision(protocol.precision, accelerator), accelerator)
    rows = []
    for model_name in models:
        try:
            rows.append(
                measure_speed(
                    model_name, protocol=protocol, data=data, options=options, steps=steps, peak_gflops=peak,
                    course_loop=course_loop,
                )
            )
        except Exception as err:  # noqa: BLE001 - one model's failure must not stop the others
            log.error("%s: speed measurement failed: %s", model_name, err)
            rows.append({"model": model_name, "error": f"{type(err).__name__}: {err}"})
    write_json_atomic(Path(out_dir) / SPEED_FILE, rows)
    return rows
