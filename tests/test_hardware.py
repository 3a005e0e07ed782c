"""``--precision auto``: bf16 mixed precision where the hardware runs it fast, else fp32 (fp16 on old GPUs)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import bench.hardware as hardware
from bench.hardware import resolve_accelerator, resolve_precision

SetFlags = Callable[..., None]
SetBf16 = Callable[[bool], None]


@pytest.fixture()
def cpu_with(monkeypatch: pytest.MonkeyPatch) -> SetFlags:
    """Pretend this CPU has exactly the given feature flags and no CUDA device."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))

    return set_flags


@pytest.fixture()
def gpu_with_bf16(monkeypatch: pytest.MonkeyPatch) -> SetBf16:
    """Pretend a CUDA device is there, with or without bf16 support; the CPU has fast bf16 either way."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx512_bf16"}))

    def set_bf16(supported: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: supported)

    return set_bf16


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("avx512f", "avx512_bf16"), "bf16-mixed"),
        (("amx_tile", "amx_bf16"), "bf16-mixed"),
        (("avx512f", "avx512_vnni", "avx2"), "32-true"),
        ((), "32-true"),  # no /proc/cpuinfo flags at all
    ],
)
@pytest.mark.parametrize("accelerator", ["cpu", "auto"])
def test_auto_on_cpu_is_bf16_only_with_fast_bf16(
    cpu_with: SetFlags, flags: tuple[str, ...], expected: str, accelerator: str
) -> None:
    cpu_with(*flags)
    assert resolve_precision("auto", accelerator) == expected


@pytest.mark.parametrize(("supported", "expected"), [(True, "bf16-mixed"), (False, "16-mixed")])
@pytest.mark.parametrize("accelerator", ["gpu", "cuda", "auto"])
def test_auto_on_gpu_follows_bf16_support(
    gpu_with_bf16: SetBf16, supported: bool, expected: str, accelerator: str
) -> None:
    gpu_with_bf16(supported)
    assert resolve_precision("auto", accelerator) == expected


def test_cpu_accelerator_on_a_gpu_machine_uses_the_cpu_rule(
    gpu_with_bf16: SetBf16, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu_with_bf16(False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2"}))
    assert resolve_precision("auto", "cpu") == "32-true"


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed", "32-true"])
def test_explicit_precision_is_kept(cpu_with: SetFlags, gpu_with_bf16: SetBf16, precision: str) -> None:
    gpu_with_bf16(False)
    assert resolve_precision(precision, "gpu") == precision
    cpu_with()
    assert resolve_precision(precision, "cpu") == precision


def test_unknown_precision_raises_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"Unknown precision 'fp8'\. Valid values are \['auto', 'bf16-mixed'"):
        resolve_precision("fp8", "cpu")


def test_auto_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_accelerator("auto") == "gpu"
    assert resolve_accelerator("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_accelerator("auto") == "cpu"
    assert resolve_accelerator("gpu") == "gpu"  # an explicit choice is Lightning's to check
