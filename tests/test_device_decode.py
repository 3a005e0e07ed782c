"""The ``device`` decode path: workers hand over the files' bytes, and each eval or extraction batch
is decoded in one ``decode_jpeg`` call on the compute device (here the CPU, where the crops must be
exactly those of the ``torchvision`` path, which decodes with the same libjpeg-turbo)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from voc_tree import corrupt, linear_flags, linear_tree, write_jpeg

from bench.cli import main
from voc.config import TransformConfig
from voc.datamodule import VOCDataModule
from voc.decode import decode_jpeg_batch, read_encoded, read_rgb_tensor
from voc.errors import VOCDataError
from voc.transforms import build_transform

VIEW = {"resize": 40, "crop": 32}  # five crops of 32 from a 40 px short side


def _jpegs(folder: Path) -> list[Path]:
    """Three JPEGs of different sizes with content, and a grey one."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(64, 48), (50, 70), (33, 33)]):
        pixels = rng.integers(0, 255, size=(h, w, 3)).astype(np.uint8)
        paths.append(folder / f"c{i}.jpg")
        Image.fromarray(pixels).save(paths[-1], quality=85)
    paths.append(folder / "grey.jpg")
    Image.fromarray(rng.integers(0, 255, size=(20, 30)).astype(np.uint8), mode="L").save(paths[-1])
    return paths


def test_decode_jpeg_batch_equals_one_file_at_a_time(tmp_path: Path) -> None:
    paths = _jpegs(tmp_path)
    decoded = decode_jpeg_batch([read_encoded(p) for p in paths], "cpu")
    assert len(decoded) == len(paths)
    for path, image in zip(paths, decoded, strict=True):
        assert image.dtype == torch.uint8 and image.device.type == "cpu" and image.shape[0] == 3
        assert torch.equal(image, read_rgb_tensor(path))


def test_decode_jpeg_batch_names_the_file_that_does_not_decode(tmp_path: Path) -> None:
    good = write_jpeg(tmp_path / "good.jpg", (24, 16))
    bad = write_jpeg(tmp_path / "bad.jpg", (24, 16))
    corrupt(bad, "truncated")
    encoded = [read_encoded(good), read_encoded(bad), read_encoded(good)]
    with pytest.raises(VOCDataError, match=r"bad\.jpg: image does not decode as a JPEG \(torchvision, cpu\)") as info:
        decode_jpeg_batch(encoded, "cpu", [good, bad, good])
    assert info.value.path == bad and ".cpp:" not in str(info.value)
    with pytest.raises(VOCDataError, match=r"^image 1 of the batch does not decode"):
        decode_jpeg_batch(encoded, "cpu")


def test_read_encoded_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(VOCDataError, match=r"gone\.jpg: image file not found"):
        read_encoded(tmp_path / "gone.jpg")


def test_device_view_hands_over_bytes_and_training_decodes_in_the_worker(tmp_path: Path) -> None:
    path = _jpegs(tmp_path)[0]
    config = TransformConfig(**VIEW, decode="device")
    view = build_transform(config, train=False)
    assert view.on_device
    encoded = view.read(path)
    assert encoded.dtype == torch.uint8 and encoded.ndim == 1
    assert torch.equal(view(encoded), encoded)  # the worker passes the bytes on
    with pytest.raises(ValueError, match=r"decode='device' hands over a file's bytes"):
        view(read_rgb_tensor(path))

    train = build_transform(config, train=True)  # random augmentation stays in the workers
    assert not train.on_device
    pixels = train.read(path)
    assert pixels.ndim == 3 and train(pixels).shape == (5, 3, 32, 32)
    with pytest.raises(ValueError, match=r"decode_batch is the decode='device' path.*train=True"):
        train.decode_batch([encoded], "cpu")
    with pytest.raises(ValueError, match=r"decode='torchvision'"):
        build_transform(TransformConfig(**VIEW, decode="torchvision"), train=False).decode_batch([encoded], "cpu")


def test_decode_batch_equals_the_torchvision_crops(tmp_path: Path) -> None:
    paths = _jpegs(tmp_path)
    device_view = build_transform(TransformConfig(**VIEW, decode="device"), train=False)
    worker_view = build_transform(TransformConfig(**VIEW, decode="torchvision"), train=False)
    crops = device_view.decode_batch([read_encoded(p) for p in paths], "cpu", paths)
    expected = torch.stack([worker_view(worker_view.read(p)) for p in paths])
    assert crops.dtype == torch.float32 and crops.shape == (4, 5, 3, 32, 32)
    assert torch.equal(crops, expected)


@pytest.mark.parametrize("workers", [0, 1])
def test_device_eval_loader_batches_equal_torchvision_batches(tiny_voc: Path, workers: int) -> None:
    def batches(decode: str) -> tuple[VOCDataModule, list]:
        datamodule = VOCDataModule(tiny_voc, transform=TransformConfig(**VIEW, decode=decode), batch_size=4,
                                   eval_batch_size=4, num_workers=workers)
        datamodule.setup("test")
        return datamodule, list(datamodule.test_dataloader())

    device_module, device_batches = batches("device")
    _, worker_batches = batches("torchvision")
    assert [len(b[1].lengths) for b in device_batches] == [4, 3]  # 7 val images
    files = [f for b in device_batches for f in b[1].files()]
    paths = [device_module.eval_set.image_path(i) for i in range(7)]
    assert [f.tolist() for f in files] == [read_encoded(p).tolist() for p in paths]
    for raw, expected in zip(device_batches, worker_batches, strict=True):
        indices, crops, targets = device_module.prepare_eval_batch(raw, torch.device("cpu"))
        assert torch.equal(indices, expected[0]) and torch.equal(targets, expected[2])
        assert torch.equal(crops, expected[1])
    assert device_module.prepare_eval_batch(worker_batches[0], "cpu") is worker_batches[0]  # decoded: unchanged
    train_batch = next(iter(device_module.train_dataloader()))
    assert train_batch[1].shape == (4, 5, 3, 32, 32)  # training crops come from the workers


def test_finetune_with_device_decode_scores_as_torchvision(tiny_voc: Path, tmp_path: Path) -> None:
    """Training decodes the same way under both, and evaluation (Lightning's test loop, through the
    datamodule's on_before_batch_transfer) gets the same crops: the same metrics."""
    metrics = {}
    for decode in ("torchvision", "device"):
        out = tmp_path / decode
        assert main(["--models", "test_resnet", "--data", str(tiny_voc), "--out", str(out), "--resize", "40",
                     "--crop", "32", "--epochs", "1", "--pretrained", "none", "--num-workers", "0", "--no-report",
                     "--no-baseline", "--decode", decode]) == 0
        record = json.loads((out / "test_resnet" / "result.json").read_text())
        assert record["status"] == "ok", record.get("error")
        assert record["config"]["decode"] == decode
        metrics[decode] = record["metrics"]
    assert metrics["device"] == metrics["torchvision"]


def test_linear_features_with_device_decode_equal_torchvision(tmp_path: Path) -> None:
    root, _ = linear_tree(tmp_path / "voc", 24, 8)
    features = {}
    for decode in ("torchvision", "device"):
        out = tmp_path / decode
        assert main(["--protocol", "linear", *linear_flags(root, out, "--decode", decode, "--no-baseline",
                                                      "--probe-costs", "1")]) == 0
        record = json.loads((out / "test_resnet-linear" / "result.json").read_text())
        assert record["status"] == "ok", record.get("error")
        assert record["features"]["view"]["decode"] == decode
        features[decode] = {p.name.split("-")[1]: np.load(p) for p in (out / ".features").glob("*.npy")}
    assert set(features["device"]) == {"train", "val"}
    for split, values in features["device"].items():
        np.testing.assert_array_equal(values, features["torchvision"][split])


def test_cli_refuses_cache_dir_with_device_decode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--models", "test_resnet", "--data", str(tmp_path), "--cache-dir", str(tmp_path / "c"),
                 "--decode", "device", "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--cache-dir" in err and "--decode device" in err
