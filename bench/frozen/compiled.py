"""Compiled inference for feature extraction: ``torch.compile`` with inductor freezing, used where
a measured rule says the compile time pays for itself.

Freezing (``torch._inductor.config.freezing``) folds the frozen weights into the graph as
constants, which lets inductor pre-pack them for the CPU's matmul kernels; it needs inference mode
and parameters that do not require grad, which is what a frozen backbone is. The compiled encoder
always sees one batch shape (a short last batch is padded, its padding's rows dropped), so it
compiles once.

The rule (``--compile auto``): time a few eager batches of the run's own shape, estimate the eager
time of every image still to extract, and compile when that estimate exceeds
:data:`BREAK_EVEN_S`. Measured on a 2-core Intel Xeon with AMX (ResNet-50, 224 × 224, batch 32,
bf16 autocast, channels-last; ``pooled_features`` of ``bench.frozen.runner`` on random input, 6 batches
after 2 warm-up ones, eager and then under :func:`freezing` and ``torch.compile``): compiling took
37.7 s and then ran 66.4 img/s against 40.6 eager, 1.63×. Compiling pays when the eager time
``T`` satisfies ``T · (1 − 1/1.63) > 37.7 s``, i.e. ``T > 97.5 s``, rounded to 98 s.

Those constants hold for the kind of device they were measured on, a CPU with AMX
(:func:`rule_applies`). On any other device (a CPU without AMX, a GPU) ``auto`` stays eager and says
why; ``--compile on`` compiles there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch

from bench.hardware import autocast, cpu_flags, synchronize
from bench.protocols.settings import COMPILE_MODES

log = logging.getLogger(__name__)

Encode = Callable[[torch.Tensor], torch.Tensor]

MEASURED_SPEEDUP = 1.63
MEASURED_COMPILE_S = 37.7
BREAK_EVEN_S = round(MEASURED_COMPILE_S * MEASURED_SPEEDUP / (MEASURED_SPEEDUP - 1.0))
"""Seconds of estimated eager extraction above which ``auto`` compiles (98 s; see the module doc)."""
MEASURED_ON = "a CPU with AMX"
"""The kind of device :data:`MEASURED_SPEEDUP` and :data:`MEASURED_COMPILE_S` were measured on."""
PROBE_BATCHES = 3
"""Eager batches timed (after one untimed warm-up batch) to estimate the eager rate."""


@dataclass(frozen=True)
class CompileDecision:
    """Whether feature extraction runs compiled, and the numbers the choice was made from."""

    mode: str
    compiled: bool
    rule: str
    images: int
    """Images still to extract (those not in the feature cache)."""
    eager_images_per_s: float | None = None
    """Measured on :data:`PROBE_BATCHES` batches of random input of the run's shape (``auto`` only)."""
    estimated_eager_s: float | None = None
    break_even_s: float | None = None
    compile_s: float | None = None
    """Wall time of the first (compiling) call, where it ran."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rule_applies(device: torch.device) -> bool:
    """Whether ``device`` is of the kind the break-even was measured on (:data:`MEASURED_ON`)."""
    return device.type == "cpu" and "amx_tile" in cpu_flags()


def decide_compile(
    mode: str, images: int, eager_images_per_s: float | None = None, *, measured_device: bool = True
) -> CompileDecision:
    """The decision for ``mode`` (:data:`COMPILE_MODES`) with ``images`` left to extract; ``auto``
    stays eager on a device the rule was not measured on (``measured_device`` False, see
    :func:`rule_applies`), and elsewhere needs the measured eager rate and compiles when
    ``images / rate > BREAK_EVEN_S``."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"--compile: unknown mode {mode!r}; choose one of {list(COMPILE_MODES)}")
    if images <= 0:
        return CompileDecision(mode, False, "nothing to extract: every split's features are cached", images)
    if mode != "auto":
        return CompileDecision(mode, mode == "on", f"--compile {mode}", images)
    if not measured_device:
        return CompileDecision(mode, False, f"auto: eager; the compile break-even was measured on {MEASURED_ON} "
                               "only, not on this device (--compile on compiles here)", images)
    if eager_images_per_s is None or eager_images_per_s <= 0:
        raise ValueError("decide_compile: mode 'auto' needs the measured eager rate (images/s)")
    estimate = images / eager_images_per_s
    compiled = estimate > BREAK_EVEN_S
    rule = (
        f"auto: estimated eager extraction {estimate:.0f} s {'>' if compiled else '<='} break-even {BREAK_EVEN_S} s "
        f"(compile {MEASURED_COMPILE_S} s, then {MEASURED_SPEEDUP}x, measured with ResNet-50 on a 2-core AMX Xeon)"
    )
    return CompileDecision(mode, compiled, rule, images, round(eager_images_per_s, 3), round(estimate, 3),
                           BREAK_EVEN_S)


def eager_rate(encode: Encode, example: torch.Tensor, autocast_dtype: torch.dtype | None) -> float:
    """Images per second of ``encode`` on ``example`` (one batch), after one warm-up call."""
    device = example.device
    with torch.inference_mode(), autocast(device, autocast_dtype):
        encode(example)
        synchronize(device)
        started = time.perf_counter()
        for _ in range(PROBE_BATCHES):
            encode(example)
        synchronize(device)
    return PROBE_BATCHES * example.shape[0] / max(time.perf_counter() - started, 1e-9)


class FixedBatchEncoder:
    """``encode`` compiled for batches of exactly ``batch`` rows: a shorter batch is padded with
    zeros and its padding's outputs dropped, so the graph is compiled once (``dynamic=False``)."""

    def __init__(self, encode: Encode, batch: int) -> None:
        self.batch = batch
        self.compiled = torch.compile(encode, dynamic=False)
        self.compile_s: float | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n > self.batch:
            return torch.cat([self(part) for part in x.split(self.batch)])
        if n < self.batch:
            pad = x.new_zeros((self.batch - n, *x.shape[1:])).contiguous(memory_format=torch.channels_last)
            x = torch.cat([x, pad]).contiguous(memory_format=torch.channels_last)
        if self.compile_s is None:
            started = time.perf_counter()
            out = self.compiled(x)
            self.compile_s = round(time.perf_counter() - started, 3)
            log.info("feature extractor compiled in %.1f s", self.compile_s)
        else:
            out = self.compiled(x)
        return out[:n]


@contextmanager
def freezing() -> Iterator[None]:
    """Inductor's weight freezing on, for the compiles inside."""
    import torch._inductor.config as inductor_config

    with inductor_config.patch(freezing=True):
        yield
