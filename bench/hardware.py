"""What this machine runs fast: precision choice and the environment written into every record."""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import torch

from bench.protocols.settings import PRECISIONS

log = logging.getLogger(__name__)


AUTOCAST_DTYPES: dict[str, torch.dtype] = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
"""The autocast dtype of each resolved mixed precision (``32-true`` runs without autocast)."""


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision, ``None`` for full precision."""
    return AUTOCAST_DTYPES.get(precision)


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """``torch.autocast`` to ``dtype`` on ``device``'s type, disabled where ``dtype`` is ``None``."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA); a no-op on the CPU. Timers read the clock after it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op compute threads (``None``: as they are), then restore them."""
    if threads is None or threads == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from ``/proc/cpuinfo`` (empty where it does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run several times faster than fp32 on this CPU."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def resolve_accelerator(accelerator: str) -> str:
    """``auto`` → ``gpu`` where CUDA is available, else ``cpu``."""
    if accelerator != "auto":
        return accelerator
    return "gpu" if torch.cuda.is_available() else "cpu"


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto`` → ``bf16-mixed`` where the hardware runs it fast, else ``32-true``."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}. Valid values are {list(PRECISIONS)}.")
    if precision != "auto":
        return precision
    if resolve_accelerator(accelerator) in ("gpu", "cuda"):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_fast_bf16() else "32-true"


def device_name(accelerator: str) -> str:
    """A human-readable name of the device that runs the model."""
    if resolve_accelerator(accelerator) in ("gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return platform.processor() or platform.machine() or "cpu"


def environment(accelerator: str, precision: str) -> dict[str, str]:
    """Library versions, device and precision, for a record."""
    import pytorch_lightning
    import timm

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "lightning": pytorch_lightning.__version__,
        "accelerator": resolve_accelerator(accelerator),
        "device": device_name(accelerator),
        "precision": precision,
        "threads": str(torch.get_num_threads()),
    }


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux ``/proc/self/clear_refs``); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process since the last :func:`reset_peak_rss`, in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None
