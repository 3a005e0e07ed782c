"""``python benchmark.py speed``: model-only against end-to-end throughput, side by side.

Model-only numbers time the crop-max classifier on random tensors of the protocol's shapes (as
timm's ``benchmark.py`` does); end-to-end numbers time our real pipeline (JPEG decode, transforms,
DataLoader, Lightning) at the same shapes, precision and memory layout, with the same steady-state
meter the leaderboard uses. Achieved GFLOP/s are compared with this machine's measured matmul peak.

Every figure is timed over ``steps`` batches after :data:`WARMUP_BATCHES` warm-up batches; a split
with fewer batches is cycled, never timed short. Each measurement is repeated; a row keeps every
repeat and shows the median with the slowest and the fastest repeat, and its ratios are the medians
of the per-repeat ratios. On the CPU the model alone runs one step right after each end-to-end
step, with the DataLoader workers paused (:mod:`bench.speed.paired`), so the two figures are timed
at the same moments: this project's shared 2-core VMs change speed by 10-40 % from one few-second
stretch to the next. Where that pairing cannot run (CUDA), the model alone is timed half before and
half after the end-to-end runs, centred in time on them, which cancels a steady drift only.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate
from torch.utils.flop_counter import FlopCounterMode

from bench.data import DataSource
from bench.hardware import (
    AUTOCAST_DTYPES,
    autocast,
    autocast_dtype,
    resolve_accelerator,
    resolve_precision,
    synchronize,
    torch_threads,
)
from bench.model import CropMaxClassifier, build_classifier
from bench.protocols.settings import Protocol
from bench.speed.cycled import cycle_loaders
from bench.speed.paired import ModelOnlyStep, PairedModelOnly, PairedModelOnlyCallback, can_pair
from bench.store import SPEED_FILE
from bench.train.experiment import TrainerOptions, build_experiment
from bench.train.throughput import WARMUP_BATCHES
from bench.weights import Weights
from voc.constants import IMAGENET_MEAN, IMAGENET_STD, NUM_CLASSES
from voc.datamodule import available_cores, default_num_workers
from voc.io import write_json_atomic
from voc.module import multilabel_bce_loss

log = logging.getLogger(__name__)

RANDOM_INIT = Weights("random", "random init")
DEFAULT_REPEATS = 3
"""How often the speed job repeats every measurement unless ``--speed-repeats`` says otherwise."""
AUTO_THREADS = "auto"
"""``--speed-threads auto``: the main process computes with ``cores - workers`` threads end to end."""
RATES = (
    "model_only_train_images_per_s",
    "e2e_train_images_per_s",
    "model_only_eval_images_per_s",
    "e2e_eval_images_per_s",
    "course_loop_train_images_per_s",
)
"""The images/s a repeat measures (the course-style loop's only with ``course_loop``)."""
RATIOS: Mapping[str, tuple[str, str]] = {
    "train_e2e_over_model_only": ("e2e_train_images_per_s", "model_only_train_images_per_s"),
    "eval_e2e_over_model_only": ("e2e_eval_images_per_s", "model_only_eval_images_per_s"),
    "e2e_train_over_course_loop": ("e2e_train_images_per_s", "course_loop_train_images_per_s"),
}
"""ratio -> (numerator, denominator): each repeat's ratio of its own two rates."""


def _device(accelerator: str) -> torch.device:
    return torch.device("cuda" if accelerator in ("gpu", "cuda") else "cpu")


def matmul_peak_gflops(precision: str, accelerator: str = "cpu", size: int = 2048, repeats: int = 5) -> float:
    """Best measured GFLOP/s of a square matmul in the precision's compute dtype."""
    device = _device(accelerator)
    dtype = AUTOCAST_DTYPES.get(precision, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
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


def model_only_steps(
    model: CropMaxClassifier, protocol: Protocol, precision: str, accelerator: str
) -> dict[str, ModelOnlyStep]:
    """One step of the model alone per stage, on fixed random tensors of the protocol's shapes:
    ``train`` (forward, loss, backward and an Adam step on a batch) and ``eval`` (forward under
    ``inference_mode`` on an eval batch), each with its images. A step does not wait for the device
    (on CUDA, time a run of steps between two :func:`synchronize` calls: :func:`model_only_timing`)."""
    device = _device(accelerator)
    k, size = _shapes(protocol)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=protocol.lr)
    dtype = autocast_dtype(precision)

    def inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.randn(batch, k, 3, size, size, device=device),
                (torch.rand(batch, NUM_CLASSES, device=device) > 0.8).float())

    train_crops, train_targets = inputs(protocol.batch_size)
    eval_crops, _ = inputs(protocol.eval_batch_size)

    def train_step() -> None:
        model.train()
        with autocast(device, dtype):
            logits = model(train_crops)
        loss = multilabel_bce_loss(logits, train_targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def eval_step() -> None:
        model.eval()
        with torch.inference_mode(), autocast(device, dtype):
            torch.sigmoid(model(eval_crops).float())

    return {"train": (protocol.batch_size, train_step), "eval": (protocol.eval_batch_size, eval_step)}


def model_only_timing(
    steps: Mapping[str, ModelOnlyStep], timed_steps: int, device: torch.device
) -> dict[str, tuple[int, float]]:
    """(images, seconds) per stage of :func:`model_only_steps`' ``steps`` on ``device`` over
    ``timed_steps`` steps after :data:`WARMUP_BATCHES` warm-up steps."""
    timings = {}
    for stage, (images, step) in steps.items():
        for _ in range(WARMUP_BATCHES):
            step()
        synchronize(device)
        started = time.perf_counter()
        for _ in range(timed_steps):
            step()
        synchronize(device)
        timings[stage] = (images * timed_steps, time.perf_counter() - started)
    return timings


def bracketed_rates(
    before: Mapping[str, tuple[int, float]], after: Mapping[str, tuple[int, float]]
) -> dict[str, float]:
    """Images/s per stage over two timings taken before and after another measurement: all their
    images over all their seconds, centred in time on what they bracket, so a machine that speeds up
    or slows down steadily does not bias the ratio of the two."""
    rates = {}
    for stage, (images, seconds) in before.items():
        more_images, more_seconds = after.get(stage, (0, 0.0))
        rates[stage] = (images + more_images) / (seconds + more_seconds)
    return rates


def e2e_threads(setting: str | int | None, workers: int) -> int | None:
    """Compute threads of the main process end to end: ``None`` leaves torch's, :data:`AUTO_THREADS`
    gives it the cores the ``workers`` DataLoader workers leave (at least one), a number is used as is."""
    if setting is None:
        return None
    if setting == AUTO_THREADS:
        return max(1, available_cores() - workers)
    return int(setting)


def end_to_end_throughput(
    model_name: str, protocol: Protocol, data: DataSource, options: TrainerOptions, steps: int,
    threads: int | None = None, paired: PairedModelOnly | None = None,
) -> dict[str, float | int]:
    """Images/s of the real pipeline, train and eval, each over ``steps`` batches after the warm-up
    (a split with fewer batches is cycled: :mod:`bench.speed.cycled`), with ``threads`` compute
    threads (``None``: torch's): ``e2e_{train,eval}_images_per_s``, ``e2e_{train,eval}_timed_batches``
    and ``e2e_threads``.
    With ``paired``, a model-only step follows every batch (:mod:`bench.speed.paired`), outside the
    end-to-end figure, and ``model_only_{train,eval}_images_per_s`` are those of the timed pairs."""
    batches = WARMUP_BATCHES + steps
    short = replace(protocol, epochs=1, limit_train_batches=batches, limit_eval_batches=batches)
    with torch_threads(threads):
        experiment = build_experiment(model_name, protocol=short, data=data, weights=RANDOM_INIT, options=options)
        cycle_loaders(experiment.datamodule, batches)
        if paired is not None:
            experiment.trainer.callbacks.append(PairedModelOnlyCallback(experiment.meter, paired))
        experiment.trainer.fit(experiment.module, datamodule=experiment.datamodule)
        experiment.trainer.test(experiment.module, datamodule=experiment.datamodule, verbose=False)
        used_threads = torch.get_num_threads()
    measured: dict[str, float | int] = {}
    for stage, meter in (("train", experiment.meter.train), ("eval", experiment.meter.eval)):
        rate = meter.steady_images_per_s()
        if rate is None or meter.timed_batches != steps:
            raise RuntimeError(
                f"{model_name}: the end-to-end {stage} loop timed {meter.timed_batches} batches, not {steps} "
                f"(after {WARMUP_BATCHES} warm-up batches of {meter.batches})"
            )
        measured[f"e2e_{stage}_images_per_s"] = rate
        measured[f"e2e_{stage}_timed_batches"] = meter.timed_batches
        if paired is not None:
            model_rate = paired.images_per_s(stage)
            if model_rate is None or paired.timed_steps[stage] != steps:
                raise RuntimeError(
                    f"{model_name}: {paired.timed_steps[stage]} paired model-only {stage} steps were timed, not {steps}"
                )
            measured[f"model_only_{stage}_images_per_s"] = model_rate
    measured["e2e_threads"] = used_threads
    return measured


def course_style_train_throughput(model_name: str, protocol: Protocol, data: DataSource, steps: int) -> float:
    """Training images/s of a straightforward loop in the style of the course project, for comparison:
    fp32, NCHW, torchvision PIL transforms per sample in one DataLoader worker, sigmoid then max over
    the crops, and a Python loop of 20 per-class ``BCELoss`` calls."""
    import timm
    from torch.utils.data import DataLoader, Subset
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
    needed = (WARMUP_BATCHES + steps) * protocol.batch_size
    if len(dataset) < needed:  # cycled, like the end-to-end loader
        dataset = Subset(dataset, [i % len(dataset) for i in range(needed)])
    loader = DataLoader(dataset, batch_size=protocol.batch_size, shuffle=True, num_workers=1)
    from bench.weight_packages import timm_model_name

    model = timm.create_model(timm_model_name(model_name), num_classes=NUM_CLASSES)
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


def with_ratios(repeat: Mapping[str, Any]) -> dict[str, Any]:
    """The repeat with each of :data:`RATIOS` whose two rates it has (unrounded)."""
    ratios = {
        name: repeat[num] / repeat[den] for name, (num, den) in RATIOS.items() if num in repeat and den in repeat
    }
    return {**repeat, **ratios}


def aggregate_repeats(repeats: Sequence[Mapping[str, Any]], digits: int = 3) -> dict[str, float]:
    """For every rate and ratio (:data:`RATES`, :data:`RATIOS`) that each repeat has: ``key``, the
    median over the repeats, and ``key_min`` / ``key_max``; rounded to ``digits`` decimals. A ratio's
    median is of the per-repeat ratios, which need not be the ratio of the two medians."""
    out: dict[str, float] = {}
    for key in (*RATES, *RATIOS):
        if not repeats or any(key not in r for r in repeats):
            continue
        values = [float(r[key]) for r in repeats]
        out[key] = round(statistics.median(values), digits)
        out[f"{key}_min"] = round(min(values), digits)
        out[f"{key}_max"] = round(max(values), digits)
    return out


def rounded(repeat: Mapping[str, Any]) -> dict[str, Any]:
    """The repeat with every float rounded to 3 decimals, as ``speed.json`` keeps it."""
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in repeat.items()}


def measure_speed(
    model_name: str,
    *,
    protocol: Protocol,
    data: DataSource,
    options: TrainerOptions,
    steps: int,
    peak_gflops: float,
    course_loop: bool = False,
    repeats: int = DEFAULT_REPEATS,
    workers: Sequence[int | None] = (None,),
    threads: str | int | None = None,
) -> list[dict[str, Any]]:
    """One model's rows, one per DataLoader worker count of ``workers`` (``None``: ``options``' own,
    else the machine's default): model-only and end-to-end throughput, their ratios and achieved
    GFLOP/s, each the median of ``repeats`` repeats with its min and max, and every repeat itself.
    Each repeat measures end to end with each worker count (the main process with :func:`e2e_threads`
    of ``threads``) and the model alone, then the course-style loop if asked. On the CPU the model
    alone runs one step after every end-to-end step, the workers paused (:mod:`bench.speed.paired`);
    elsewhere it is timed half before and half after the end-to-end runs (:func:`bracketed_rates`).
    ``model_only_timing`` says which."""
    accelerator = resolve_accelerator(options.accelerator)
    precision = resolve_precision(protocol.precision, accelerator)
    k, size = _shapes(protocol)
    torch.manual_seed(protocol.seed)
    model, _ = build_classifier(model_name, RANDOM_INIT, input_size=size)
    flops = forward_flops_per_image(model, k, size)
    steps_of_model = model_only_steps(model, protocol, precision, accelerator)
    pairing = can_pair(accelerator)
    default = default_num_workers() if options.num_workers is None else options.num_workers
    counts = list(dict.fromkeys(default if w is None else w for w in workers))
    measured: dict[int, list[dict[str, Any]]] = {w: [] for w in counts}
    model_threads = torch.get_num_threads()
    for repeat in range(repeats):
        log.info("%s: speed repeat %d of %d", model_name, repeat + 1, repeats)
        if pairing:  # a model-only step after every end-to-end one (warm-up included), workers paused
            for w in counts:
                paired = PairedModelOnly(steps_of_model, threads=model_threads)
                e2e = end_to_end_throughput(model_name, protocol, data, replace(options, num_workers=w), steps,
                                            threads=e2e_threads(threads, w), paired=paired)
                measured[w].append({**e2e, "model_only_threads": model_threads})
        else:  # the model alone half before the end-to-end runs, half after (bracketed_rates)
            before = model_only_timing(steps_of_model, steps - steps // 2, _device(accelerator))
            runs = {
                w: end_to_end_throughput(model_name, protocol, data, replace(options, num_workers=w), steps,
                                         threads=e2e_threads(threads, w))
                for w in counts
            }
            after = model_only_timing(steps_of_model, steps // 2, _device(accelerator)) if steps > 1 else {}
            rates = bracketed_rates(before, after)
            for w in counts:
                measured[w].append({
                    **runs[w],
                    "model_only_train_images_per_s": rates["train"],
                    "model_only_eval_images_per_s": rates["eval"],
                    "model_only_threads": model_threads,
                })
        if course_loop:
            rate = course_style_train_throughput(model_name, protocol, data, steps)
            for w in counts:
                measured[w][-1]["course_loop_train_images_per_s"] = rate
        for w in counts:
            measured[w][-1] = rounded(with_ratios(measured[w][-1]))
    rows = []
    for w in counts:
        summary = aggregate_repeats(measured[w])
        first = measured[w][0]
        rows.append({
            "model": model_name,
            "precision": precision,
            "shape": f"batch {protocol.batch_size}/{protocol.eval_batch_size} x {k} x 3 x {size} x {size}",
            "workers": w,
            "model_only_threads": first["model_only_threads"],
            "e2e_threads": first["e2e_threads"],
            "warmup_steps": WARMUP_BATCHES,
            "timed_steps": steps,
            "model_only_timing": "paired" if pairing else "bracketed",
            "forward_gflops_per_image": round(flops / 1e9, 3),
            **summary,
            # training does about three forward passes' worth of work (forward + 2x in backward)
            "e2e_train_gflops_per_s": round(3 * flops * summary["e2e_train_images_per_s"] / 1e9, 1),
            "e2e_eval_gflops_per_s": round(flops * summary["e2e_eval_images_per_s"] / 1e9, 1),
            "matmul_peak_gflops_per_s": round(peak_gflops, 1),
            "repeats": measured[w],
        })
    return rows


SPEED_COLUMNS: Mapping[str, str] = {
    "model": "model",
    "precision": "precision",
    "workers": "workers",
    "threads": "threads model-only/e2e",
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
"""Row key -> the table's header, in the table's order."""


def _cell(row: Mapping[str, Any], key: str) -> str:
    """``median (min–max)`` for a measured rate or ratio of several repeats, the value alone otherwise."""
    if key == "threads":
        return f"{row['model_only_threads']}/{row['e2e_threads']}" if "e2e_threads" in row else "–"
    value = row.get(key)
    if value is None:
        return "–"
    if key in RATES or key in RATIOS:
        low, high = row.get(f"{key}_min"), row.get(f"{key}_max")
        if len(row.get("repeats") or ()) > 1 and low is not None and high is not None:
            return f"{value:.3f} ({low:.3f}–{high:.3f})"
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def speed_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a GitHub markdown table: each rate and ratio as ``median (min–max)`` over the repeats."""
    body = [[_cell(row, key) for key in SPEED_COLUMNS] for row in rows]
    return tabulate(body, headers=list(SPEED_COLUMNS.values()), tablefmt="github", disable_numparse=True)


def speed_caption(rows: Sequence[dict[str, Any]]) -> str:
    """What the table's numbers are: repeats, warm-up and timed steps, how ratios and threads are read."""
    measured = [row for row in rows if "repeats" in row]
    if not measured:
        return "No measurement finished."
    row = measured[0]
    return (
        f"Each rate: median (min–max) over {len(row['repeats'])} repeat(s), each timed over {row['timed_steps']} "
        f"steps after {row['warmup_steps']} warm-up steps (a split with fewer batches is cycled). Ratios: median "
        "(min–max) of the per-repeat ratios. GFLOP/s: at the median end-to-end rate. Threads: the main process's "
        "compute threads for the model-only and the end-to-end runs; workers: DataLoader worker processes."
    )


def run_speed(
    models: Sequence[str],
    *,
    protocol: Protocol,
    data: DataSource,
    out_dir: str | Path,
    options: TrainerOptions = TrainerOptions(),
    steps: int = 20,
    course_loop: bool = False,
    repeats: int = DEFAULT_REPEATS,
    workers: Sequence[int | None] = (None,),
    threads: str | int | None = None,
) -> list[dict[str, Any]]:
    """Measure every model (:func:`measure_speed`: one row per worker count); writes ``speed.json``
    in ``out_dir``. A failing model gets one error row."""
    accelerator = resolve_accelerator(options.accelerator)
    peak = matmul_peak_gflops(resolve_precision(protocol.precision, accelerator), accelerator)
    rows = []
    for model_name in models:
        try:
            rows.extend(
                measure_speed(
                    model_name, protocol=protocol, data=data, options=options, steps=steps, peak_gflops=peak,
                    course_loop=course_loop, repeats=repeats, workers=workers, threads=threads,
                )
            )
        except Exception as err:  # noqa: BLE001 - one model's failure must not stop the others
            log.error("%s: speed measurement failed: %s", model_name, err)
            rows.append({"model": model_name, "error": f"{type(err).__name__}: {err}"})
    write_json_atomic(Path(out_dir) / SPEED_FILE, rows)
    return rows
