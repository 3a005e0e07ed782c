"""voc.io: a file appears whole or not at all; a failed write leaves the old file and no temp file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from voc.io import atomic_output, atomic_write, write_json_atomic


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_bytes_and_text_exactly(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.bin", b"\x00\xff\r\n")
    atomic_write(tmp_path / "b.txt", "é\r\nline\n")  # no newline translation, UTF-8
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\xff\r\n"
    assert (tmp_path / "b.txt").read_bytes() == "é\r\nline\n".encode()
    assert _leftovers(tmp_path) == []


def test_creates_parent_folders_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "x" / "y" / "f.txt"
    atomic_write(target, "old")
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert _leftovers(target.parent) == []


def test_permissions_are_those_of_a_plain_open(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    atomic_write(tmp_path / "atomic", b"")
    assert (tmp_path / "atomic").stat().st_mode == plain.stat().st_mode


def test_failure_mid_write_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write(target, b"old content")
    with pytest.raises(KeyboardInterrupt), atomic_output(target, "wb") as fh:
        fh.write(b"half of the new")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []


def test_temp_file_is_beside_the_target_until_the_end(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    with atomic_output(target, "w") as fh:
        fh.write("partial")
        assert not target.exists()  # readers never see a partial file under the final name
        (temp,) = _leftovers(tmp_path)
        assert temp.startswith(".f.txt.")
    assert target.read_text() == "partial"
    assert _leftovers(tmp_path) == []


def test_fsync_before_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    atomic_write(tmp_path / "f", b"x")
    assert calls == ["fsync", "replace"]


def test_write_json_atomic_bytes(tmp_path: Path) -> None:
    obj = {"b": [1, 2.5, None], "a": "é"}
    write_json_atomic(tmp_path / "r.json", obj)
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == json.dumps(obj, indent=2, allow_nan=False) + "\n"


def test_write_json_atomic_refuses_nan_and_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    write_json_atomic(target, {"ok": 1})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"bad": math.nan})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert _leftovers(tmp_path) == []


def test_bad_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unsupported mode 'a'"), atomic_output(tmp_path / "f", "a"):
        pass
    assert list(tmp_path.iterdir()) == []
