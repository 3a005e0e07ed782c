"""The committed results can be rebuilt and re-scored from a clean clone.

Each results folder (``results/``, the synthetic set's, and ``results/voc07-real-dev/``, real
photos) is checked: ``python benchmark.py report --out FOLDER`` must give byte-identical
``leaderboard.md``, ``leaderboard.csv``, ``report.md`` and every other text file, also in a clone
without any VOC data (the galleries are then kept as committed), and ``python -m voc evaluate`` on
every run's ``predictions.csv`` and ``labels.csv`` must give exactly the metrics its ``result.json``
records.

Figures (PNG, JPEG) are compared byte for byte only where the installed matplotlib, FreeType,
Pillow, zlib and libjpeg are the versions in ``tests/data/figure_versions.json``
(``tests/figure_versions.py`` writes it), the ones the committed figures rebuild byte-identically
with. Elsewhere each rebuilt figure must still exist, decode completely and have the committed one's
format and pixel size, and the test warns that the byte comparison was left out and why. The
alternative, comparing the data behind each figure, would need that data written beside the figures
or recomputed here through the report's internals, and it would not see a change in how a figure is
drawn (labels, scales, colours); bytes under known versions see every change, and an upgrade of a
drawing library costs a warning, not a failure, until the figures are rebuilt and the versions
recorded again (docs/development.md).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import figure_versions
import pytest
from PIL import Image

from bench.cli import main as benchmark_main
from bench.data import SYNTHETIC_ROOT, SYNTHETIC_SIZE
from bench.store import (
    LABELS_FILE,
    LEADERBOARD_CSV,
    LEADERBOARD_MD,
    LOG_DIR,
    METRICS_LOG,
    PREDICTIONS_FILE,
    REPORT_DIR,
    REPORT_MD,
    RESULT_FILE,
)
from voc.cli import main as voc_main
from voc.synthetic import generate_synthetic_voc

RESULTS = Path(__file__).resolve().parents[1] / "results"
FOLDERS = (RESULTS, RESULTS / "voc07-real-dev")
"""Every committed results folder: each has its own runs, leaderboard and report."""
RUN_FILES = (RESULT_FILE, PREDICTIONS_FILE, LABELS_FILE)
ABLATION = RESULTS / "voc07-real-dev-ablation"
"""One results folder per step of docs/real-photos.md's ablation; their runs are re-scored too."""
COMMITTED_RUNS = sorted(
    [p.parent for folder in FOLDERS for p in folder.glob(f"*/{RESULT_FILE}")]
    + [p.parent for p in ABLATION.glob(f"*/*/{RESULT_FILE}")]
)


def _copy_runs(source: Path, target: Path) -> None:
    """Only what is committed of each run: its record, predictions and labels, and its training log
    (the learning curves) where it has one."""
    for run in sorted(p.parent for p in source.glob(f"*/{RESULT_FILE}")):
        (target / run.name / LOG_DIR).mkdir(parents=True)
        for name in (*RUN_FILES, f"{LOG_DIR}/{METRICS_LOG}"):
            if (run / name).is_file():
                shutil.copy2(run / name, target / run.name / name)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_results_hold_committed_runs(folder: Path) -> None:
    runs = [run for run in COMMITTED_RUNS if run.parent == folder]  # the ablation's folders hold one run each
    assert len(runs) >= 2, f"no committed runs under {folder}"
    for run in runs:
        for name in RUN_FILES:
            assert (run / name).is_file(), f"{run / name} is not committed"


@pytest.mark.parametrize("run", COMMITTED_RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_voc_evaluate_gives_the_recorded_metrics(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads((run / RESULT_FILE).read_text(encoding="utf-8"))
    assert voc_main(["evaluate", "--scores", str(run / PREDICTIONS_FILE), "--labels", str(run / LABELS_FILE)]) == 0
    assert json.loads(capsys.readouterr().out) == record["metrics"]


def _rebuild(committed: Path, rebuilt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert benchmark_main(["report", "--out", str(rebuilt)]) == 0
    capsys.readouterr()
    for name in (LEADERBOARD_MD, LEADERBOARD_CSV, REPORT_MD):
        assert (rebuilt / name).read_bytes() == (committed / name).read_bytes(), f"{name} differs when rebuilt"
    _assert_same_report(committed / REPORT_DIR, rebuilt / REPORT_DIR)


@pytest.mark.slow
@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_a_clone_without_data_rebuilds_the_committed_files(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # what a fresh clone has: the runs and the report as committed, no VOC tree (the runs' roots are relative)
    clone = tmp_path / "clone"
    _copy_runs(folder, clone / "results")
    shutil.copytree(folder / REPORT_DIR, clone / "results" / REPORT_DIR)
    monkeypatch.chdir(clone)
    _rebuild(folder, clone / "results", capsys)
    # committed galleries (of the synthetic set) are kept; a folder of real photos commits none
    has_galleries = any((folder / REPORT_DIR).rglob("gallery"))
    assert ("kept as it was" in caplog.text) is has_galleries


@pytest.mark.slow
def test_report_only_redraws_the_galleries_from_the_synthetic_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the galleries read the eval images from the runs' VOC tree: the synthetic set, regenerated
    generate_synthetic_voc(tmp_path / SYNTHETIC_ROOT, SYNTHETIC_SIZE["n_train"], SYNTHETIC_SIZE["n_val"],
                           seed=SYNTHETIC_SIZE["seed"], workers=2)
    _copy_runs(RESULTS, tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    _rebuild(RESULTS, tmp_path / "results", capsys)


FIGURE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
"""Files whose bytes depend on the drawing libraries' versions."""


def _files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def _assert_same_report(committed: Path, rebuilt: Path) -> None:
    """The same files under both folders; text files byte for byte, figures byte for byte where the
    installed drawing libraries are the recorded ones, else by format and pixel size (with a
    warning)."""
    names = _files(committed)
    assert names == _files(rebuilt), (sorted(names - _files(rebuilt)), sorted(_files(rebuilt) - names))
    differences = figure_versions.version_differences()
    if differences:
        warnings.warn(
            f"figures under {committed} compared by format and pixel size only, not byte for byte: "
            f"installed {', '.join(differences)} in {figure_versions.RECORD}; docs/development.md says how "
            "to refresh the figures and the record",
            UserWarning,
            stacklevel=2,
        )
    for name in sorted(names):
        if differences and Path(name).suffix.lower() in FIGURE_SUFFIXES:
            _assert_same_image_shape(committed / name, rebuilt / name)
        else:
            same = (rebuilt / name).read_bytes() == (committed / name).read_bytes()  # a bool: pytest diffs
            assert same, f"{name} differs when rebuilt"  # two binaries' reprs for minutes where CI is set


def _assert_same_image_shape(committed: Path, rebuilt: Path) -> None:
    """``rebuilt`` decodes completely and has ``committed``'s format and pixel size."""
    try:
        with Image.open(rebuilt) as image:
            image.verify()  # a PNG's chunk checksums
        with Image.open(rebuilt) as image:
            image.load()  # every pixel
            shape = image.format, image.size
    except (OSError, SyntaxError, ValueError) as error:
        raise AssertionError(f"{rebuilt} does not decode: {error!r}") from error
    with Image.open(committed) as image:
        expected = image.format, image.size
    assert shape == expected, f"{rebuilt}: format and size {shape}, committed {expected}"


# How rebuilt figures are compared: byte for byte under the recorded library versions, by format and
# pixel size under others; text files byte for byte always.

COURSE_FIGURES = RESULTS / "voc07-real-dev" / REPORT_DIR / "course"
GALLERY_JPEG = RESULTS / REPORT_DIR / "course" / "gallery" / "tf_efficientnet_lite0" / "cat.jpg"


@pytest.fixture
def record_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``record_versions(matplotlib="0.0.0")``: the installed versions, with those changed, become
    the record."""

    def record(**changed: str) -> None:
        path = tmp_path / "figure_versions.json"
        path.write_text(json.dumps({**figure_versions.installed_versions(), **changed}), encoding="utf-8")
        monkeypatch.setattr(figure_versions, "RECORD", path)

    return record


def _two_reports(tmp_path: Path) -> tuple[Path, Path]:
    """Two identical copies of committed figures (5 PNGs, a gallery JPEG) and a text file."""
    copies = tmp_path / "committed", tmp_path / "rebuilt"
    for copy in copies:
        shutil.copytree(COURSE_FIGURES, copy)
        (copy / "gallery").mkdir()
        shutil.copy2(GALLERY_JPEG, copy / "gallery" / "cat.jpg")
        (copy / "notes.csv").write_text("model,mAP\nresnet50,0.5\n", encoding="utf-8")
    return copies


def _redraw(path: Path, **save: object) -> None:
    """``path`` saved again with its first pixel changed: same format and size, other bytes."""
    before = path.read_bytes()
    with Image.open(path) as image:
        image.load()
        redrawn, kind = image.copy(), image.format
    redrawn.putpixel((0, 0), (1, 2, 3, 255)[: len(redrawn.getbands())])
    redrawn.save(path, format=kind, **save)
    assert path.read_bytes() != before


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_record_names_every_library_that_draws_the_figures() -> None:
    recorded = figure_versions.recorded_versions()
    assert recorded.keys() == figure_versions.installed_versions().keys()
    assert all(isinstance(version, str) for version in recorded.values())


def test_version_differences_name_the_library_and_both_versions(record_versions: Callable[..., None]) -> None:
    import matplotlib

    record_versions()
    assert figure_versions.version_differences() == []
    record_versions(matplotlib="0.0.0")
    assert figure_versions.version_differences() == [f"matplotlib {matplotlib.__version__} (recorded 0.0.0)"]


@pytest.mark.parametrize("name", ["per_class_ap.png", "gallery/cat.jpg"])
def test_under_the_recorded_versions_a_changed_figure_fails(
    name: str, tmp_path: Path, record_versions: Callable[..., None]
) -> None:
    committed, rebuilt = _two_reports(tmp_path)
    record_versions()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the figures are compared byte for byte
        _assert_same_report(committed, rebuilt)
    _flip_byte(rebuilt / name)
    with pytest.raises(AssertionError, match=f"{name} differs when rebuilt"):
        _assert_same_report(committed, rebuilt)
    shutil.copy2(committed / name, rebuilt / name)
    _redraw(rebuilt / name)  # decodes, same size, one pixel changed
    with pytest.raises(AssertionError, match=f"{name} differs when rebuilt"):
        _assert_same_report(committed, rebuilt)


def test_under_other_versions_redrawn_figures_pass_with_a_warning(
    tmp_path: Path, record_versions: Callable[..., None]
) -> None:
    committed, rebuilt = _two_reports(tmp_path)
    record_versions(matplotlib="0.0.0", Pillow="0.0.0")
    _redraw(rebuilt / "per_class_ap.png")
    _redraw(rebuilt / "gallery" / "cat.jpg", quality=50)
    with pytest.warns(UserWarning, match=r"not byte for byte: installed Pillow \S+ \(recorded 0\.0\.0\), matplotlib"):
        _assert_same_report(committed, rebuilt)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _resize(path: Path) -> None:
    with Image.open(path) as image:
        image.resize((image.width, image.height + 1)).save(path)


def _as_jpeg(path: Path) -> None:
    with Image.open(path) as image:
        image.convert("RGB").save(path, format="JPEG")


@pytest.mark.filterwarnings("ignore:figures under")
@pytest.mark.parametrize(
    ("change", "name", "message"),
    [
        (_flip_byte, "per_class_ap.png", "does not decode"),
        (_truncate, "gallery/cat.jpg", "does not decode"),  # a JPEG has no checksum: a flipped byte decodes
        (_resize, "pr_curves.png", r"format and size \('PNG', \(\d+, \d+\)\), committed"),
        (_as_jpeg, "pr_curves.png", r"format and size \('JPEG', "),
        (Path.unlink, "learning_curves.png", "learning_curves.png"),
        (lambda path: path.write_text("model,mAP\nresnet50,0.6\n", encoding="utf-8"), "notes.csv", "notes.csv differs"),
    ],
    ids=["png-corrupt", "jpeg-truncated", "png-resized", "png-as-jpeg", "missing", "text-changed"],
)
def test_under_other_versions_broken_figures_and_changed_text_still_fail(
    change: Callable[[Path], object], name: str, message: str, tmp_path: Path, record_versions: Callable[..., None]
) -> None:
    committed, rebuilt = _two_reports(tmp_path)
    record_versions(matplotlib="0.0.0")
    change(rebuilt / name)
    with pytest.raises(AssertionError, match=message):
        _assert_same_report(committed, rebuilt)
