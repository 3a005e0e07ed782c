"""Tests of voc.download, offline: archives are "downloaded" from file:// URLs."""

from __future__ import annotations

import hashlib
import logging
import tarfile
from pathlib import Path

import pytest
from voc_tree import write_voc_tree

from voc.constants import VOC_ARCHIVES
from voc.dataset import VOCClassification
from voc.download import download_voc
from voc.errors import VOCDataError


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _make_archive(tmp_path: Path, name: str, year: str = "2012") -> Path:
    """A tar(.gz) holding ``VOCdevkit/VOC<year>/...`` with two images."""
    src = tmp_path / f"src-{name}"
    write_voc_tree(src, {"2008_000001": [("dog", False)], "2008_000002": [("cat", True)]}, year=year)
    archive = tmp_path / "server" / name
    archive.parent.mkdir(exist_ok=True)
    with tarfile.open(archive, "w:gz" if name.endswith(".gz") else "w") as tar:
        tar.add(src / "VOCdevkit", arcname="VOCdevkit")
    return archive


@pytest.mark.parametrize("name", ["VOCtrainval.tar", "VOCtrainval.tar.gz"])
def test_download_and_extract(tmp_path: Path, name: str) -> None:
    archive = _make_archive(tmp_path, name)
    root = tmp_path / "data"
    voc_dir = download_voc("2012", root, archives=[(archive.as_uri(), name, _md5(archive))])
    assert voc_dir == root / "VOCdevkit" / "VOC2012"
    assert (root / name).is_file() and not list(root.glob(".*.tmp"))
    ds = VOCClassification(root, "2012", "train")
    assert ds.ids == ["2008_000001", "2008_000002"]


def test_skips_download_when_md5_matches(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    archive = _make_archive(tmp_path, "a.tar")
    root = tmp_path / "data"
    spec = [(archive.as_uri(), "a.tar", _md5(archive))]
    download_voc(2012, root, archives=spec)
    archive.unlink()  # the "server" is gone: a second call must not need it
    with caplog.at_level(logging.INFO, logger="voc.download"):
        assert download_voc(2012, root, archives=spec) == root / "VOCdevkit" / "VOC2012"
    assert "not downloading" in caplog.text


def test_refetches_a_file_with_the_wrong_md5(tmp_path: Path) -> None:
    archive = _make_archive(tmp_path, "a.tar")
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.tar").write_bytes(b"half a download")
    download_voc("2012", root, archives=[(archive.as_uri(), "a.tar", _md5(archive))])
    assert _md5(root / "a.tar") == _md5(archive)


def test_md5_mismatch(tmp_path: Path) -> None:
    archive = _make_archive(tmp_path, "a.tar")
    actual = _md5(archive)
    wrong = "0" * 32
    with pytest.raises(VOCDataError, match=rf"a\.tar: md5 mismatch .*expected {wrong}, got {actual}") as info:
        download_voc("2012", tmp_path / "data", archives=[(archive.as_uri(), "a.tar", wrong)])
    assert info.value.path == tmp_path / "data" / "a.tar"
    assert not (tmp_path / "data" / "VOCdevkit").exists()  # nothing extracted


def test_archive_without_the_year(tmp_path: Path) -> None:
    archive = _make_archive(tmp_path, "a.tar", year="2007")
    with pytest.raises(VOCDataError, match=r"did not create .*VOCdevkit/VOC2012"):
        download_voc("2012", tmp_path / "data", archives=[(archive.as_uri(), "a.tar", _md5(archive))])


def test_missing_source(tmp_path: Path) -> None:
    url = (tmp_path / "nothing.tar").as_uri()
    with pytest.raises(VOCDataError, match=r"nothing\.tar: download from file://.* failed"):
        download_voc("2012", tmp_path / "data", archives=[(url, "nothing.tar", "0" * 32)])
    assert list((tmp_path / "data").iterdir()) == []  # no temp file left behind


def test_interrupted_transfer_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _make_archive(tmp_path, "a.tar")

    def cut(source: object, out: object, length: int = 0) -> None:
        out.write(b"the first megabyte")  # type: ignore[attr-defined]
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr("voc.download.shutil.copyfileobj", cut)
    with pytest.raises(VOCDataError, match=r"a\.tar: download from file://.* failed: connection reset"):
        download_voc("2012", tmp_path / "data", archives=[(archive.as_uri(), "a.tar", _md5(archive))])
    assert list((tmp_path / "data").iterdir()) == []


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unknown VOC year '2010'. Valid values are \['2012', '2007'\]"):
        download_voc("2010", tmp_path)
    with pytest.raises(ValueError, match=r"Unsupported url scheme 'ftp'"):
        download_voc("2012", tmp_path, archives=[("ftp://x/a.tar", "a.tar", "0" * 32)])


def test_official_archive_table() -> None:
    """The archive table matches the one in the installed torchvision."""
    voc = pytest.importorskip("torchvision.datasets.voc")
    table = voc.DATASET_YEAR_DICT
    ours = {name: md5 for archives in VOC_ARCHIVES.values() for _, name, md5 in archives}
    theirs = {table[k]["filename"]: table[k]["md5"] for k in ("2012", "2007", "2007-test")}
    assert ours == theirs
