"""``scripts/train_step_formats.py``: a training step per precision and memory format, as a table."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab



@pytest.fixture(scope="module")
def script(load_script):  # noqa: ANN001, ANN201
    return load_script("train_step_formats")


def test_one_row_per_precision_and_format_with_every_step_timed(script, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    seconds = script.measure("test_efficientnet", batch=2, size=32, steps=3, precisions=["32-true", "bf16-mixed"])
    assert list(seconds) == [("32-true", "channels_last"), ("32-true", "contiguous"),
                             ("bf16-mixed", "channels_last"), ("bf16-mixed", "contiguous")]
    assert all(len(s) == 3 and min(s) > 0 for s in seconds.values())
    assert script.main(["--models", "test_efficientnet", "--batch-size", "2", "--size", "32", "--steps", "1",
                        "--precisions", "32-true"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| test_efficientnet")]
    assert [row.split("|")[2:4] for row in rows] == [[" 32-true ", " channels_last "], [" 32-true ", " contiguous "]]


def test_bad_sizes_are_refused(script, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit):
        script.main(["--steps", "0"])
    assert "--batch-size and --steps must be positive" in capsys.readouterr().err
