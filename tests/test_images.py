"""Tests of voc.images: load_rgb and find_bad_images (paths, ids, or anything with ids and image_path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageFile
from voc_tree import corrupt, write_jpeg

from voc.errors import VOCDataError
from voc.images import find_bad_images, load_rgb


@pytest.fixture
def jpegs(tmp_path: Path) -> list[Path]:
    return [write_jpeg(tmp_path / f"img{k}.jpg", (24, 16)) for k in range(4)]


class _Listing:
    """Not a dataset: just ids and image_path, the interface find_bad_images asks for."""

    def __init__(self, paths: list[Path]) -> None:
        self.ids = [f"id-{k}" for k in range(len(paths))]
        self._paths = paths

    def image_path(self, index: int) -> Path:
        return self._paths[index]


# --------------------------------------------------------------------------- load_rgb


def test_load_rgb_converts_to_rgb(tmp_path: Path) -> None:
    Image.new("L", (8, 6), 50).save(tmp_path / "gray.jpg")
    image = load_rgb(tmp_path / "gray.jpg")
    assert image.mode == "RGB" and image.size == (8, 6)


def test_load_rgb_decodes_at_reduced_size(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "big.jpg", (400, 300))
    image = load_rgb(tmp_path / "big.jpg", decode_size=lambda w, h: (w // 4, h // 4))
    assert image.size == (100, 75)  # the JPEG's 1/4 scale, which covers the size asked for


@pytest.mark.parametrize("kind", ["zero-bytes", "truncated", "text"])
def test_load_rgb_undecodable(jpegs: list[Path], kind: str) -> None:
    corrupt(jpegs[1], kind)
    with pytest.raises(VOCDataError, match=r"img1\.jpg: image does not decode") as info:
        load_rgb(jpegs[1])
    assert info.value.path == jpegs[1]
    load_rgb(jpegs[0])  # the others still load


def test_load_rgb_missing(tmp_path: Path) -> None:
    with pytest.raises(VOCDataError, match=r"gone\.jpg: image file not found"):
        load_rgb(tmp_path / "gone.jpg")


def test_truncated_jpeg_raises_whatever_the_global_setting(jpegs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    corrupt(jpegs[0], "truncated")
    with pytest.raises(VOCDataError, match=r"image does not decode"):
        load_rgb(jpegs[0])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


# --------------------------------------------------------------------------- find_bad_images


def test_find_bad_images_paths(jpegs: list[Path], tmp_path: Path) -> None:
    assert find_bad_images(jpegs) == []
    corrupt(jpegs[0], "zero-bytes")
    corrupt(jpegs[1], "truncated")
    corrupt(jpegs[3], "text")
    bad = find_bad_images([*jpegs, str(tmp_path / "gone.jpg")])
    assert [i for i, _ in bad] == ["img0", "img1", "img3", "gone"]
    assert all("image does not decode" in reason for _, reason in bad[:3])
    assert "img1.jpg" in bad[1][1] and "truncated" in bad[1][1].lower()
    assert "not found" in bad[3][1]


def test_find_bad_images_paths_with_ids(jpegs: list[Path]) -> None:
    corrupt(jpegs[2], "text")
    assert [i for i, _ in find_bad_images(jpegs, ids=["a", "b", "c", "d"])] == ["c"]
    with pytest.raises(ValueError, match=r"3 ids for 4 image paths"):
        find_bad_images(jpegs, ids=["a", "b", "c"])


def test_find_bad_images_of_anything_with_ids_and_image_path(jpegs: list[Path]) -> None:
    listing = _Listing(jpegs)
    assert find_bad_images(listing) == []
    corrupt(jpegs[3], "truncated")
    assert [i for i, _ in find_bad_images(listing)] == ["id-3"]
    with pytest.raises(ValueError, match=r"pass ids only with paths"):
        find_bad_images(listing, ids=["x"] * 4)


def test_find_bad_images_real_photos(voc_fixtures: Path, tmp_path: Path) -> None:
    good = sorted((voc_fixtures / "photos").glob("*.jpg"))
    cut = tmp_path / "cut.jpg"
    data = good[0].read_bytes()
    cut.write_bytes(data[: len(data) - 100])
    bad = find_bad_images([*good, cut])
    assert [i for i, _ in bad] == ["cut"]
    assert "truncated" in bad[0][1].lower()
