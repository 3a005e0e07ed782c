"""The ``torchvision`` decode path: read_rgb_tensor, the tensor transforms, and where ``decode`` is
set, recorded and refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from voc_tree import corrupt, write_jpeg

import voc.transforms
from bench.cli import main
from bench.protocols.finetune import COURSE_PROTOCOL
from bench.protocols.linear import LinearProtocol
from bench.protocols.settings import Protocol, config_hash
from voc.config import DECODERS, TransformConfig
from voc.datamodule import VOCDataModule
from voc.dataset import VOCClassification
from voc.decode import read_rgb_tensor
from voc.errors import VOCDataError
from voc.images import load_rgb
from voc.transforms import build_transform


def _photo(path: Path, size: tuple[int, int] = (120, 90)) -> Path:
    """A JPEG with smooth gradients and edges (noise would make the two resizes differ more)."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([x * 255 // w, y * 255 // h, ((x // 10 + y // 10) % 2) * 200], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def test_read_rgb_tensor_matches_pil_decode(tmp_path: Path) -> None:
    path = _photo(tmp_path / "a.jpg")
    tensor = read_rgb_tensor(path)
    assert tensor.dtype == torch.uint8 and tensor.shape == (3, 90, 120)
    pil = torch.from_numpy(np.asarray(load_rgb(path)).copy()).permute(2, 0, 1)
    assert (tensor.int() - pil.int()).abs().max() <= 2  # both libjpeg(-turbo); the IDCT may differ in the last bit


def test_read_rgb_tensor_converts_grey_to_rgb(tmp_path: Path) -> None:
    Image.new("L", (8, 6), 50).save(tmp_path / "grey.jpg")
    tensor = read_rgb_tensor(tmp_path / "grey.jpg")
    assert tensor.shape == (3, 6, 8) and bool((tensor == tensor[0]).all())


@pytest.mark.parametrize("kind", ["zero-bytes", "truncated", "text"])
def test_read_rgb_tensor_undecodable_names_the_file(tmp_path: Path, kind: str) -> None:
    path = write_jpeg(tmp_path / "img1.jpg", (24, 16))
    corrupt(path, kind)
    with pytest.raises(VOCDataError, match=r"img1\.jpg: image does not decode \(torchvision\)") as info:
        read_rgb_tensor(path)
    assert info.value.path == path
    assert ".cpp:" not in str(info.value)  # torchvision's C++ source location is left out


def test_read_rgb_tensor_missing(tmp_path: Path) -> None:
    with pytest.raises(VOCDataError, match=r"gone\.jpg: image file not found"):
        read_rgb_tensor(tmp_path / "gone.jpg")


@pytest.mark.parametrize(
    ("mode", "resize", "crop", "shape"), [("five", 64, 48, (5, 3, 48, 48)), ("full", 56, 56, (1, 3, 56, 56))])
def test_tensor_path_matches_pil_path_within_a_level(tmp_path: Path, mode: str, resize: int, crop: int,
                                                     shape: tuple[int, ...]) -> None:
    path = _photo(tmp_path / "a.jpg")
    pil = build_transform(TransformConfig(resize=resize, crop=crop, crop_mode=mode), train=False)
    tv = build_transform(TransformConfig(resize=resize, crop=crop, crop_mode=mode, decode="torchvision"), train=False)
    image = tv.read(path)
    assert isinstance(image, torch.Tensor) and isinstance(pil.read(path), Image.Image)
    a, b = pil(pil.read(path)), tv(image)
    assert a.shape == b.shape == shape
    # both resize with antialiased bilinear filters; they may round a pixel differently (one level of 255)
    level = 1.0 / (255 * min(TransformConfig().std))
    assert (a - b).abs().max().item() <= 2 * level + 1e-6
    assert (a - b).abs().mean().item() <= 0.25 * level


def test_tensor_path_flip_and_rotation_are_pils(tmp_path: Path) -> None:
    """The same random draws give the same augmentation on both paths (rotation: black fill, bilinear)."""
    path = _photo(tmp_path / "a.jpg")
    level = 1.0 / (255 * min(TransformConfig().std))
    for seed in range(4):
        outs = []
        for decode in DECODERS:
            transform = build_transform(TransformConfig(resize=64, crop=48, decode=decode), train=True)
            torch.manual_seed(seed)
            outs.append(transform(transform.read(path)))
        # rotation resamples the two (slightly different) resized images: a few pixels at edges differ more
        assert (outs[0] - outs[1]).abs().mean().item() <= 2 * level


def test_tensor_path_rejects_non_rgb_uint8() -> None:
    transform = build_transform(TransformConfig(resize=20, crop=16, decode="torchvision"), train=False)
    with pytest.raises(ValueError, match="uint8 RGB tensor"):
        transform(torch.zeros(3, 20, 20))
    with pytest.raises(ValueError, match="uint8 RGB tensor"):
        transform(torch.zeros(1, 20, 20, dtype=torch.uint8))


def test_tensor_path_randaugment_goes_through_pil(tmp_path: Path) -> None:
    path = _photo(tmp_path / "a.jpg")
    transform = build_transform(
        TransformConfig(resize=64, crop=48, decode="torchvision", augment="randaugment"), train=True)
    out = transform(transform.read(path))
    assert out.shape == (5, 3, 48, 48) and torch.isfinite(out).all()


def test_dataset_decodes_with_the_transforms_decoder(tiny_voc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[Path] = []

    def counting_read(path: Path) -> torch.Tensor:
        read.append(Path(path))
        return read_rgb_tensor(path)

    monkeypatch.setattr(voc.transforms, "read_rgb_tensor", counting_read)
    transform = build_transform(TransformConfig(resize=40, crop=32, decode="torchvision"), train=False)
    dataset = VOCClassification(tiny_voc, "2012", "val", transform=transform)
    crops, _ = dataset[0]
    assert read == [dataset.image_path(0)]
    torch.testing.assert_close(crops, transform(read_rgb_tensor(dataset.image_path(0))), rtol=0, atol=0)
    pil = VOCClassification(tiny_voc, "2012", "val", transform=build_transform(
        TransformConfig(resize=40, crop=32), train=False))
    pil[0]
    assert len(read) == 1  # the PIL pipeline does not read through torchvision


def test_unknown_decode_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown decode 'cv2'"):
        TransformConfig(decode="cv2")
    with pytest.raises(ValueError, match="unknown decode 'cv2'"):
        Protocol(decode="cv2")
    with pytest.raises(ValueError, match="unknown decode 'cv2'"):
        LinearProtocol(decode="cv2")


def test_decode_is_recorded_and_hashed_only_when_not_pil() -> None:
    """Records written before ``decode`` existed (PIL) keep their config and hash."""
    assert "decode" not in COURSE_PROTOCOL.to_dict() and "decode" not in LinearProtocol().with_overrides(
        decode="pil").to_dict()
    assert LinearProtocol().decode == "torchvision" and LinearProtocol().to_dict()["decode"] == "torchvision"
    tv = COURSE_PROTOCOL.with_overrides(decode="torchvision")
    assert tv.to_dict()["decode"] == "torchvision"
    assert tv.transform_config().decode == "torchvision"
    assert config_hash(tv.to_dict()) != config_hash(COURSE_PROTOCOL.to_dict())


def test_image_cache_does_not_combine_with_torchvision_decode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--cache-dir.*--decode torchvision"):
        VOCDataModule(tmp_path, transform=TransformConfig(decode="torchvision"), cache_dir=tmp_path / "cache")


def test_cli_refuses_cache_dir_with_torchvision_decode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--models", "resnet18", "--data", str(tmp_path), "--cache-dir", str(tmp_path / "c"),
                 "--decode", "torchvision", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--cache-dir" in capsys.readouterr().err


@pytest.mark.parametrize("decode", ["pil", "torchvision"])
def test_loader_threads_give_the_batches_of_one_thread_in_order(tiny_voc: Path, decode: str) -> None:
    import pickle
    import threading

    def batches(threads: int) -> tuple[list, set[str]]:
        dm = VOCDataModule(tiny_voc, transform=TransformConfig(resize=40, crop=32, crop_mode="five", decode=decode),
                           batch_size=6, eval_batch_size=6, num_workers=0, loader_threads=threads)
        dm.setup("fit")
        seen: set[str] = set()
        original = dm.eval_set.__class__.__getitem__

        def recording(self, index: int):  # noqa: ANN001, ANN202
            seen.add(threading.current_thread().name)
            return original(self, index)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dm.eval_set.__class__, "__getitem__", recording)
            out = list(dm.test_dataloader())
        return out, seen

    one, one_threads = batches(0)
    three, three_threads = batches(3)
    assert one_threads == {"MainThread"}
    # the threads make the batch of 6; the last batch, one image, is made in the main thread
    assert {n.split("_")[0] for n in three_threads} == {"voc-decode", "MainThread"}
    assert len(one) == len(three) == 2  # 7 val images in batches of 6
    for (i1, x1, y1), (i3, x3, y3) in zip(one, three, strict=True):
        assert torch.equal(i1, i3) and torch.equal(x1, x3) and torch.equal(y1, y3)
    # a loader worker gets the dataset pickled: the thread pool stays behind
    dm = VOCDataModule(tiny_voc, num_workers=0, loader_threads=2)
    dataset = dm.test_dataloader().dataset
    dataset.__getitems__([0, 1])
    assert pickle.loads(pickle.dumps(dataset))._pool is None
