"""Where backbones' weights come from: none, a local file, ImageNet via cache or hub, offline."""

from __future__ import annotations

import logging
import pickle
import re
import time
from pathlib import Path

import pytest
import timm
import torch

import bench.weights as weights_mod
from bench.model import build_classifier
from bench.weights import Weights, WeightsUnavailableError, resolve_all_weights, resolve_weights


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_mod, "hub_reachable", lambda timeout=2.0: False)
    monkeypatch.setattr(weights_mod, "_cached_file", lambda cfg: None)


def test_none_is_random_init() -> None:
    w = resolve_weights("test_resnet", "none")
    assert w.source == "random" and w.create_kwargs() == {"pretrained": False}


def test_auto_offline_falls_back_to_random_with_warning(offline: None, caplog: pytest.LogCaptureFixture) -> None:
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        w = resolve_weights("test_resnet", "auto")
    assert time.perf_counter() - started < 5
    assert w.source == "random" and "imagenet unavailable" in w.description
    assert "random init" in caplog.text


def test_imagenet_offline_fails_fast_with_how_to(offline: None) -> None:
    with pytest.raises(WeightsUnavailableError, match=r"--pretrained /path/to/weights"):
        resolve_weights("test_resnet", "imagenet")


def test_imagenet_from_local_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cached = tmp_path / "model.safetensors"
    cached.write_bytes(b"")
    monkeypatch.setattr(weights_mod, "_cached_file", lambda cfg: str(cached))
    w = resolve_weights("test_resnet", "auto")
    assert w.source == "imagenet" and w.file == str(cached)
    assert w.create_kwargs() == {"pretrained": True, "pretrained_cfg_overlay": {"file": str(cached)}}


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="no such file"):
        resolve_weights("test_resnet", str(tmp_path / "nope.pth"))


def test_hub_unreachable_on_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert weights_mod.hub_reachable(timeout=1.0) is False
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert weights_mod.hub_reachable() is False


def test_file_weights_load_into_backbone_with_fresh_head(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = timm.create_model("test_resnet")  # 1000-class ImageNet-shaped checkpoint
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    w = resolve_weights("test_resnet", str(path))
    assert w.source == "file" and w.description == "file weights.pth"
    model, _ = build_classifier("test_resnet", w)
    loaded = model.backbone.state_dict()
    first = next(iter(source.state_dict()))
    torch.testing.assert_close(loaded[first], source.state_dict()[first])
    assert loaded["fc.weight"].shape[0] == 20


class _RunsCode:
    """Unpickling this object calls ``Path.write_text(marker, "pwned")``: code execution."""

    marker: Path

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "pwned"))


def _unpickling_error(err: BaseException | None) -> pickle.UnpicklingError | None:
    """The ``pickle.UnpicklingError`` in ``err``'s chain of causes (timm wraps torch's in a RuntimeError)."""
    while err is not None and not isinstance(err, pickle.UnpicklingError):
        err = err.__cause__ or err.__context__
    return err


def test_malicious_pickle_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    evil = _RunsCode()
    evil.marker = marker
    path = tmp_path / "evil.pth"
    torch.save({"conv1.0.weight": evil}, path)  # a real torch checkpoint, as an attacker would ship it
    with pytest.raises((RuntimeError, pickle.UnpicklingError)) as raised:
        build_classifier("test_resnet", Weights("file", "file evil.pth", file=str(path)))
    assert not marker.exists()
    # refused by torch's weights-only unpickler for the global it would have called, not for any other reason
    cause = _unpickling_error(raised.value)
    assert cause is not None, repr(raised.value)
    assert "Weights only load failed" in str(cause)
    assert re.search(r"Unsupported global: GLOBAL (getattr|pathlib\.\w*Path)", str(cause)), str(cause)


def test_resolve_all_weights_asks_the_hub_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[float] = []

    def hub(timeout: float = 2.0) -> bool:
        asked.append(timeout)
        return False

    monkeypatch.setattr(weights_mod, "hub_reachable", hub)
    monkeypatch.setattr(weights_mod, "_cached_file", lambda cfg: None)
    resolved = resolve_all_weights(["test_resnet", "test_efficientnet", "test_vit"], "auto", hub_timeout=0.5)
    assert asked == [0.5]
    assert [(m, w.source) for m, w in resolved.items()] == [
        ("test_resnet", "random"), ("test_efficientnet", "random"), ("test_vit", "random")
    ]


def test_resolve_all_weights_stops_at_the_first_unavailable_model(offline: None) -> None:
    with pytest.raises(WeightsUnavailableError, match="test_resnet"):
        resolve_all_weights(["test_resnet", "test_vit"], "imagenet")
