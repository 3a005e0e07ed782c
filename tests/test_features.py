"""Frozen features: extraction (voc.features), the on-disk cache (voc.feature_cache) and how a frozen
run reuses it (bench.frozen.runner): no backbone call when cached, a new entry when the model, weights,
view or data change."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import bench.frozen.compiled
import bench.frozen.runner
from bench.data import DataSource
from bench.frozen.compiled import BREAK_EVEN_S, decide_compile
from bench.frozen.runner import FrozenOptions, feature_key, frozen_run_dir_name, run_frozen_model
from bench.protocols.linear import LinearProtocol
from bench.protocols.settings import FrozenProtocol
from bench.store import PREDICTIONS_FILE, read_record
from bench.weights import Weights
from voc.feature_cache import FORMAT_VERSION, FeatureCache
from voc.features import extract_features

# -- extraction -------------------------------------------------------------------------------


def test_features_are_placed_by_index_and_averaged_over_crops() -> None:
    crops = torch.arange(5 * 2 * 3 * 2 * 2, dtype=torch.float32).reshape(5, 2, 3, 2, 2)
    batches = [(torch.tensor([3, 0]), crops[[3, 0]], None), (torch.tensor([4, 1, 2]), crops[[4, 1, 2]], None)]

    def encode(x: torch.Tensor) -> torch.Tensor:  # [B*K, 3, 2, 2] -> [B*K, 3]: per-channel mean
        return x.mean(dim=(2, 3))

    features = extract_features(encode, batches, 5)
    expected = crops.mean(dim=(3, 4)).mean(dim=1).numpy()  # per image: mean over pixels, then over its 2 crops
    assert features.dtype == np.float32 and features.shape == (5, 3)
    np.testing.assert_allclose(features, expected, rtol=1e-6)
    bf16 = extract_features(encode, batches, 5, autocast_dtype=torch.bfloat16)  # computed in bf16, stored fp32
    assert bf16.dtype == np.float32
    with pytest.raises(ValueError, match="yielded 4 of 5 images"):
        extract_features(encode, batches[1:] + [(torch.tensor([0]), crops[[0]], None)], 5)


def test_the_head_pools_in_float32_under_bf16_autocast() -> None:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False).eval()
    x = torch.randn(3, 3, 128, 128)  # 4 x 4 feature maps: the pooling averages 16 values
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        features = bench.frozen.runner.pooled_features(model, x)
        maps = model.forward_features(x)
    assert maps.dtype == torch.bfloat16 and features.dtype == torch.float32
    with torch.inference_mode():
        expected = model.forward_head(maps.float(), pre_logits=True)  # the bf16 maps, pooled in float32
    torch.testing.assert_close(features, expected, rtol=0, atol=0)


# -- the cache --------------------------------------------------------------------------------


def test_cache_round_trip_and_misses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = FeatureCache(tmp_path / "features")
    key = {"model": "m", "view": {"resize": 224}}
    ids = ["b", "a", "c"]
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert cache.load("m-train", key, ids) is None
    npy = cache.save("m-train", key, ids, x)
    assert npy.parent == tmp_path / "features" and npy.suffix == ".npy"
    assert sorted(p.name for p in npy.parent.iterdir()) == sorted([npy.name, npy.with_suffix(".json").name])
    np.testing.assert_array_equal(cache.load("m-train", key, ids), x)
    assert cache.load("m-train", {**key, "view": {"resize": 256}}, ids) is None  # another key: another entry
    assert cache.paths("m-train", key) != cache.paths("m-train", {**key, "view": {"resize": 256}})
    assert cache.load("m-train", key, ["a", "b", "c"]) is None  # other images (or another order)
    assert cache.load("m-train", key, ids[:2]) is None
    np.save(npy, x.astype(np.float64))  # a damaged entry is computed again, not trusted
    with caplog.at_level(logging.WARNING):
        assert cache.load("m-train", key, ids) is None
    assert "not float32" in caplog.text


def test_cache_key_holds_the_format_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = FeatureCache(tmp_path)
    before = cache.paths("m", {"a": 1})
    monkeypatch.setattr("voc.feature_cache.FORMAT_VERSION", FORMAT_VERSION + 1)
    assert cache.paths("m", {"a": 1}) != before


def test_feature_key_changes_with_model_weights_data_view_and_precision(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(b"jpeg")
    weights_file = tmp_path / "w.pth"
    weights_file.write_bytes(b"weights")
    protocol = LinearProtocol()
    data = DataSource(root=tmp_path)
    transform = protocol.transform_config()
    cpu = torch.device("cpu")
    random0 = Weights("random", "random init")

    def key(**changes: object) -> str:
        args = {"model_name": "resnet50", "weights": random0, "protocol": protocol, "data": data, "split": "trainval",
                "transform": transform, "image_paths": [image], "precision": "bf16-mixed", "device": cpu, **changes}
        return FeatureCache(tmp_path).paths("x", feature_key(**args))[0].name

    base = key()
    assert key() == base
    changed = [
        key(model_name="resnet18"),
        key(weights=Weights("imagenet", "imagenet (resnet50.a1_in1k)")),
        key(weights=Weights("file", "file w.pth", file=str(weights_file))),
        key(protocol=replace(protocol, seed=1)),  # a random-init backbone depends on the seed
        key(data=DataSource(root=tmp_path / "other")),
        key(split="test"),
        key(transform=replace(transform, resize=256)),
        key(transform=replace(transform, interpolation="bicubic")),
        key(transform=replace(transform, mean=(0.5, 0.5, 0.5))),
        key(precision="32-true"),
    ]
    assert len(set(changed)) == len(changed) and base not in changed
    # ImageNet weights do not depend on the seed; a weights file is known by its path, size and time
    imagenet = Weights("imagenet", "imagenet (resnet50.a1_in1k)")
    assert key(weights=imagenet) == key(weights=imagenet, protocol=replace(protocol, seed=1))
    before = key(weights=Weights("file", "file w.pth", file=str(weights_file)))
    os.utime(weights_file, ns=(1, 1))
    assert key(weights=Weights("file", "file w.pth", file=str(weights_file))) != before
    # an image replaced in place
    os.utime(image, ns=(1, 1))
    assert key() != base


# -- reuse in a frozen run --------------------------------------------------------------------

TINY = LinearProtocol(year="2012", train_split="train", eval_split="val", resize=32, batch_size=8)


@pytest.fixture
def backbone_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the backbone forward passes of frozen runs (one entry per batch)."""
    calls: list[int] = []
    real = bench.frozen.runner.pooled_features

    def counted(backbone: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return real(backbone, x)

    monkeypatch.setattr(bench.frozen.runner, "pooled_features", counted)
    return calls


def _run(
    root: Path, out: Path, protocol: FrozenProtocol = TINY, cache: Path | None = None, compile: str = "off"
) -> Path:
    options = FrozenOptions(num_workers=0, n_jobs=1, feature_cache=cache, compile=compile)
    record = run_frozen_model("test_resnet", protocol=protocol, data=DataSource(root=root), out_dir=out,
                              weights=Weights("random", "random init"), pretrained="none", options=options)
    assert record.ok, record.error
    return out / frozen_run_dir_name("test_resnet", protocol)


def test_a_rerun_takes_every_feature_from_the_cache(
    tiny_voc: Path, tmp_path: Path, backbone_calls: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "results"
    first = _run(tiny_voc, out)
    assert sum(backbone_calls) == 27  # 20 train + 7 val images, one crop each
    record = read_record(first)
    assert record is not None and record.extra["features"]["cache"]["train"]["from_cache"] is False
    cached = sorted((out / ".features").glob("*.npy"))
    assert len(cached) == 2
    predictions = (first / PREDICTIONS_FILE).read_text()

    backbone_calls.clear()
    with caplog.at_level(logging.INFO, logger="bench.frozen.runner"):
        second = _run(tiny_voc, out)
    assert backbone_calls == []
    train_npy, val_npy = cached  # test_resnet-train-<key>.npy sorts first
    assert f"train features from cache {train_npy}" in caplog.text
    assert f"val features from cache {val_npy}" in caplog.text
    record = read_record(second)
    assert record is not None
    assert {s["from_cache"] for s in record.extra["features"]["cache"].values()} == {True}
    assert (second / PREDICTIONS_FILE).read_text() == predictions  # same features, same probe, same scores
    assert record.throughput["feature_train_images_per_s"] is None


@pytest.mark.slow
def test_another_view_or_data_computes_new_features(tiny_voc: Path, tmp_path: Path, backbone_calls: list[int]) -> None:
    cache = tmp_path / "cache"
    _run(tiny_voc, tmp_path / "a", cache=cache)
    assert sum(backbone_calls) == 27
    backbone_calls.clear()
    _run(tiny_voc, tmp_path / "b", replace(TINY, resize=40), cache=cache)  # another view
    assert sum(backbone_calls) == 27
    copy = tmp_path / "copy"
    shutil.copytree(tiny_voc, copy)
    backbone_calls.clear()
    _run(copy, tmp_path / "c", cache=cache)  # another VOC tree
    assert sum(backbone_calls) == 27
    backbone_calls.clear()
    _run(tiny_voc, tmp_path / "d", replace(TINY, probe="logreg"), cache=cache)  # another probe: same features
    assert backbone_calls == []
    assert len(list(cache.glob("*.npy"))) == 6


def test_resume_keeps_a_complete_record_of_the_same_config(
    tiny_voc: Path, tmp_path: Path, backbone_calls: list[int]
) -> None:
    options = FrozenOptions(num_workers=0, n_jobs=1)
    data, weights = DataSource(root=tiny_voc), Weights("random", "random init")
    first = run_frozen_model("test_resnet", protocol=TINY, data=data, out_dir=tmp_path, weights=weights,
                             pretrained="none", options=options, resume=True)
    backbone_calls.clear()
    again = run_frozen_model("test_resnet", protocol=TINY, data=data, out_dir=tmp_path, weights=weights,
                             pretrained="none", options=options, resume=True)
    assert again.to_dict() == json.loads(json.dumps(first.to_dict())) and backbone_calls == []  # as stored
    other = run_frozen_model("test_resnet", protocol=replace(TINY, costs=(1.0,)), data=data, out_dir=tmp_path,
                             weights=weights, pretrained="none", options=options, resume=True)
    assert other.config_hash != first.config_hash and other.config["costs"] == [1.0]  # another grid: run again


# -- compiled extraction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "images", "rate", "compiled"),
    [("auto", 10_000, 40.0, True), ("auto", 1_000, 40.0, False), ("auto", 3_920, 40.0, False),
     ("auto", 3_921, 40.0, True), ("on", 10, None, True), ("off", 10_000, None, False), ("on", 0, None, False)],
)
def test_the_compile_rule(mode: str, images: int, rate: float | None, compiled: bool) -> None:
    # break-even 98 s: 3,920 images at 40 img/s is exactly 98 s (not above it)
    decision = decide_compile(mode, images, rate)
    assert BREAK_EVEN_S == 98 and decision.compiled is compiled and decision.images == images
    if mode == "auto":
        assert decision.estimated_eager_s == pytest.approx(images / rate) and decision.break_even_s == 98


def test_the_compile_rule_refuses_what_it_cannot_decide() -> None:
    with pytest.raises(ValueError, match="--compile: unknown mode 'always'"):
        decide_compile("always", 10)
    with pytest.raises(ValueError, match="needs the measured eager rate"):
        decide_compile("auto", 10)


@pytest.mark.parametrize(
    ("workers", "threads", "accelerator", "expected"),
    [
        (None, None, "cpu", (0, 3)),  # the CPU default: no workers, a thread per core
        (None, 1, "cpu", (0, 1)),
        (0, None, "cpu", (0, 3)),
        (2, None, "cpu", (2, 0)),  # workers asked for: workers, no threads
        (None, None, "gpu", (5, 0)),  # an accelerator: the datamodule's default workers
        (0, None, "gpu", (0, 0)),
        (None, 2, "gpu", (0, 2)),
    ],
)
def test_loader_arrangement_by_hand(monkeypatch: pytest.MonkeyPatch, workers: int | None, threads: int | None,
                                    accelerator: str, expected: tuple[int, int]) -> None:
    monkeypatch.setattr(bench.frozen.runner, "available_cores", lambda: 3)
    monkeypatch.setattr(bench.frozen.runner, "default_num_workers", lambda: 5)
    options = FrozenOptions(num_workers=workers, loader_threads=threads)
    assert bench.frozen.runner.loader_arrangement(options, accelerator) == expected


def test_auto_stays_eager_on_a_device_the_rule_was_not_measured_on() -> None:
    decision = decide_compile("auto", 10_000, None, measured_device=False)
    assert decision.compiled is False and decision.eager_images_per_s is None
    assert "measured on a CPU with AMX only" in decision.rule and "--compile on" in decision.rule
    assert decide_compile("on", 10, measured_device=False).compiled is True


@pytest.mark.parametrize(("device", "flags", "applies"), [
    ("cpu", {"avx512f", "amx_tile", "amx_bf16"}, True), ("cpu", {"avx512f", "avx512_bf16"}, False),
    ("cuda", {"amx_tile"}, False),
])
def test_the_rule_applies_to_amx_cpus_only(monkeypatch: pytest.MonkeyPatch, device: str, flags: set[str],
                                           applies: bool) -> None:
    monkeypatch.setattr(bench.frozen.compiled, "cpu_flags", lambda: frozenset(flags))
    assert bench.frozen.compiled.rule_applies(torch.device(device)) is applies


def test_auto_on_a_small_set_stays_eager_and_says_why(
    tiny_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.frozen.runner, "rule_applies", lambda device: True)  # any CI machine: the AMX path
    record = read_record(_run(tiny_voc, tmp_path, compile="auto"))
    assert record is not None
    decision = record.extra["features"]["compile"]
    assert decision["mode"] == "auto" and decision["compiled"] is False and decision["images"] == 27
    assert decision["eager_images_per_s"] > 0 and decision["estimated_eager_s"] < decision["break_even_s"]
    assert decision["rule"].startswith("auto: estimated eager extraction")
    # the loader arrangement the extraction used is recorded: no workers (asked), a thread per core
    assert record.extra["features"]["loader"] == {"workers": 0, "threads": bench.frozen.runner.available_cores()}


@pytest.mark.slow
def test_compiled_features_equal_eager_ones_within_bf16_noise(tiny_voc: Path, tmp_path: Path) -> None:
    protocol = replace(TINY, precision="bf16-mixed")
    features = {}
    for mode in ("off", "on"):
        record = read_record(_run(tiny_voc, tmp_path / mode, protocol, compile=mode))
        assert record is not None and record.extra["features"]["compile"]["compiled"] is (mode == "on")
        cache = record.extra["features"]["cache"]
        features[mode] = np.concatenate([np.load(cache[split]["path"]) for split in ("train", "val")])
    compiled = read_record(tmp_path / "on" / frozen_run_dir_name("test_resnet", protocol))
    assert compiled is not None and compiled.extra["features"]["compile"]["compile_s"] > 0
    # 20 train images in batches of 8: the last batch (4) is padded to the compiled shape, and still
    # equals its eager features; bf16 feature maps: differences of a few bf16 ulps (2**-8 relative)
    scale = np.abs(features["off"]).max()
    np.testing.assert_allclose(features["on"], features["off"], rtol=0, atol=2e-2 * scale)
    assert not np.array_equal(features["on"], np.zeros_like(features["on"]))
