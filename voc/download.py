"""Download, md5-check and extract the official PASCAL VOC archives."""

from __future__ import annotations

import logging
import shutil
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

from torchvision.datasets.utils import calculate_md5, check_integrity, extract_archive

from voc.constants import VOC_ARCHIVES
from voc.errors import VOCDataError
from voc.io import atomic_output

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_USER_AGENT = "voc-bench"


def download_voc(
    year: str | int,
    root: str | Path,
    *,
    archives: Sequence[tuple[str, str, str]] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch and extract VOC ``year`` into ``root``; returns ``root/VOCdevkit/VOC<year>``.

    ``archives`` (url, file name, md5) defaults to ``VOC_ARCHIVES[year]``; urls may be
    http(s) or ``file://``. Archives are kept in ``root``; one whose md5 already matches
    is not fetched again. ``timeout`` (seconds) applies to each network wait. Raises
    VOCDataError on an md5 mismatch (naming the file, expected and actual md5) or when
    the archives do not hold ``VOCdevkit/VOC<year>``; ValueError for an unknown year.
    """
    year = str(year)
    if archives is None:
        if year not in VOC_ARCHIVES:
            raise ValueError(f"Unknown VOC year {year!r}. Valid values are {list(VOC_ARCHIVES)}.")
        archives = VOC_ARCHIVES[year]
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)

    for url, filename, md5 in archives:
        archive = root / filename
        if check_integrity(archive, md5):
            logger.info("%s is already there with the right md5; not downloading", archive)
        else:
            logger.info("downloading %s to %s", url, archive)
            _fetch(url, archive, timeout)
            actual = calculate_md5(archive)
            if actual != md5:
                raise VOCDataError(
                    f"md5 mismatch after download from {url}: expected {md5}, got {actual}. "
                    "Delete the file and retry; if it persists, the archive or mirror has changed",
                    archive,
                )
        logger.info("extracting %s into %s", archive, root)
        extract_archive(archive, root)

    voc_dir = root / "VOCdevkit" / f"VOC{year}"
    if not voc_dir.is_dir():
        raise VOCDataError(
            f"the archives ({', '.join(name for _, name, _ in archives)}) did not create {voc_dir}",
            root,
        )
    return voc_dir


def _fetch(url: str, dest: Path, timeout: float) -> None:
    """Stream ``url`` (http, https or file) into ``dest`` through ``voc.io.atomic_output``, so an
    interrupted transfer never leaves a file under the final name (nor a temp file)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("file", "http", "https"):
        raise ValueError(f"Unsupported url scheme {parsed.scheme!r} in {url!r}: use http, https or file.")
    try:
        with _open_source(url, timeout) as source, atomic_output(dest, "wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
    except OSError as err:
        raise VOCDataError(f"download from {url} failed: {err}", dest) from None


def _open_source(url: str, timeout: float) -> IO[bytes]:
    """``url`` opened for reading: a local file for ``file://``, else an HTTP response."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).open("rb")
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    return urllib.request.urlopen(request, timeout=timeout)
