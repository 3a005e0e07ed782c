"""Tests of the synthetic VOC generator: determinism, layout, formats, labels and statistics."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from voc import synthetic as syn
from voc.constants import VOC_CLASSES
from voc.labels import load_labels
from voc.synthetic import paint, stats, writer
from voc.synthetic.shapes import GLYPH_ASPECT, GLYPHS

N_TRAIN, N_VAL, N_TEST = 24, 16, 8
BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")
PER_CLASS_LINE = re.compile(r"^(\S+) ( 1|-1| 0)$")


def _generate(root: Path, year: str, n_test: int, workers: int = 1) -> Path:
    return syn.generate_synthetic_voc(root, N_TRAIN, N_VAL, n_test, year=year, seed=7, workers=workers)


@pytest.fixture(scope="module")
def tree2007(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VOC2007 tree with a test split; returns ``root``."""
    root = tmp_path_factory.mktemp("syn2007")
    _generate(root, "2007", N_TEST)
    return root


@pytest.fixture(scope="module")
def tree2012(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VOC2012 tree without a test split; returns ``root``."""
    root = tmp_path_factory.mktemp("syn2012")
    _generate(root, "2012", 0)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _voc_dir(root: Path, year: str) -> Path:
    return root / "VOCdevkit" / f"VOC{year}"


def _split_ids(voc_dir: Path, split: str) -> list[str]:
    return (voc_dir / "ImageSets" / "Main" / f"{split}.txt").read_text().split()


def _class_file(voc_dir: Path, cls: str, split: str) -> dict[str, int]:
    lines = (voc_dir / "ImageSets" / "Main" / f"{cls}_{split}.txt").read_bytes().decode().splitlines()
    out = {}
    for line in lines:
        match = PER_CLASS_LINE.match(line)
        assert match, f"bad per-class line {line!r}"
        out[match.group(1)] = int(match.group(2))
    return out


def _xml_labels(xml_path: Path) -> dict[str, int]:
    """Per-class values computed from the XML alone: object names and difficult flags."""
    labels = dict.fromkeys(VOC_CLASSES, -1)
    for obj in ET.parse(xml_path).getroot().findall("object"):
        name = obj.findtext("name")
        value = 0 if obj.findtext("difficult") == "1" else 1
        labels[name] = max(labels[name], value)
    return labels


# --- determinism -----------------------------------------------------------------------------


def test_same_arguments_give_identical_bytes(tree2007: Path, tmp_path: Path) -> None:
    """A second run (in another folder, with two worker processes) writes the same bytes."""
    _generate(tmp_path, "2007", N_TEST, workers=2)
    first, second = _files(tree2007), _files(tmp_path)
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert not different


def test_images_do_not_depend_on_split_sizes(tree2012: Path, tmp_path: Path) -> None:
    syn.generate_synthetic_voc(tmp_path, 3, 2, year="2012", seed=7)
    small, big = _voc_dir(tmp_path, "2012"), _voc_dir(tree2012, "2012")
    for image_id in _split_ids(small, "trainval"):
        for name in (f"JPEGImages/{image_id}.jpg", f"Annotations/{image_id}.xml"):
            assert (small / name).read_bytes() == (big / name).read_bytes()


def test_splits_and_seeds_give_different_images() -> None:
    train, _ = syn.render_synthetic_image(0, "train", 0)
    val, _ = syn.render_synthetic_image(0, "val", 0)
    other_seed, _ = syn.render_synthetic_image(1, "train", 0)
    assert train.tobytes() != val.tobytes()
    assert train.tobytes() != other_seed.tobytes()


# --- layout ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("year", "splits", "eol"), [
    ("2007", ("train", "val", "trainval", "test"), b"\r\n"),
    ("2012", ("train", "val", "trainval"), b"\n"),
])
def test_layout(tree2007: Path, tree2012: Path, year: str, splits: tuple[str, ...], eol: bytes) -> None:
    root = tree2007 if year == "2007" else tree2012
    voc_dir = _voc_dir(root, year)
    main = voc_dir / "ImageSets" / "Main"
    expected = {f"{s}.txt" for s in splits} | {f"{c}_{s}.txt" for c in VOC_CLASSES for s in splits}
    assert {p.name for p in main.iterdir()} == expected
    for name in expected:
        data = (main / name).read_bytes()
        assert data.endswith(eol)
        if eol == b"\r\n":
            assert data.count(b"\n") == data.count(b"\r\n")
        else:
            assert b"\r" not in data
    train, val = _split_ids(voc_dir, "train"), _split_ids(voc_dir, "val")
    assert (len(train), len(val)) == (N_TRAIN, N_VAL)
    assert not set(train) & set(val)
    assert _split_ids(voc_dir, "trainval") == sorted(train + val)
    id_pattern = r"^2012_\d{6}$" if year == "2012" else r"^\d{6}$"
    all_ids = _split_ids(voc_dir, "trainval") + (_split_ids(voc_dir, "test") if "test" in splits else [])
    assert len(set(all_ids)) == len(all_ids)
    for image_id in all_ids:
        assert re.match(id_pattern, image_id)
        assert (voc_dir / "JPEGImages" / f"{image_id}.jpg").is_file()
        assert (voc_dir / "Annotations" / f"{image_id}.xml").is_file()
    leftovers = [p for p in root.rglob("*.tmp")]
    assert not leftovers


def test_per_class_files_list_split_ids_in_order(tree2007: Path) -> None:
    voc_dir = _voc_dir(tree2007, "2007")
    for split in ("train", "val", "trainval", "test"):
        ids = _split_ids(voc_dir, split)
        assert ids == sorted(ids)
        for cls in VOC_CLASSES:
            lines = (voc_dir / "ImageSets" / "Main" / f"{cls}_{split}.txt").read_text().splitlines()
            assert [line.split()[0] for line in lines] == ids
            assert all(line == f"{line.split()[0]} {int(line.split()[1]):2d}" for line in lines)


# --- annotations -------------------------------------------------------------------------------


def _annotations(root: Path, year: str) -> list[Path]:
    return sorted((_voc_dir(root, year) / "Annotations").glob("*.xml"))


@pytest.mark.parametrize("year", ["2007", "2012"])
def test_xml_structure_and_boxes(tree2007: Path, tree2012: Path, year: str) -> None:
    root = tree2007 if year == "2007" else tree2012
    for xml_path in _annotations(root, year):
        text = xml_path.read_text()
        assert text.startswith("<annotation>\n\t<folder>") and text.endswith("</annotation>\n")
        ann = ET.fromstring(text)
        assert ann.findtext("folder") == f"VOC{year}"
        assert ann.findtext("filename") == f"{xml_path.stem}.jpg"
        assert ann.findtext("source/database") == f"The VOC{year} Database"
        width, height = int(ann.findtext("size/width")), int(ann.findtext("size/height"))
        assert int(ann.findtext("size/depth")) == 3
        with Image.open(xml_path.parents[1] / "JPEGImages" / f"{xml_path.stem}.jpg") as img:
            assert img.size == (width, height) and img.mode == "RGB" and img.format == "JPEG"
        objects = ann.findall("object")
        assert objects
        for obj in objects:
            assert obj.findtext("name") in VOC_CLASSES
            assert obj.findtext("pose") in ("Left", "Right", "Frontal", "Rear", "Unspecified")
            assert obj.findtext("truncated") in ("0", "1") and obj.findtext("difficult") in ("0", "1")
            xmin, ymin, xmax, ymax = (int(obj.findtext(f"bndbox/{k}")) for k in BOX_TAGS)
            assert 1 <= xmin < xmax <= width and 1 <= ymin < ymax <= height
            touches_border = xmin == 1 or ymin == 1 or xmax == width or ymax == height
            if obj.findtext("truncated") == "1":
                assert touches_border
            small = max(xmax - xmin + 1, ymax - ymin + 1) < syn.DIFFICULT_MAX_SIDE * min(width, height)
            assert (obj.findtext("difficult") == "1") == small
            for part in obj.findall("part"):
                assert obj.findtext("name") == "person"
                assert part.findtext("name") in ("head", "hand", "foot")
                pxmin, pymin, pxmax, pymax = (int(part.findtext(f"bndbox/{k}")) for k in BOX_TAGS)
                assert 1 <= pxmin < pxmax <= width and 1 <= pymin < pymax <= height


def test_difficult_truncated_and_parts_occur(tmp_path: Path) -> None:
    """Over 60 images: some difficult, truncated and multi-instance objects, and person parts."""
    voc_dir = syn.generate_synthetic_voc(tmp_path, 40, 20, year="2012", seed=3)
    difficult = truncated = parts = multi = 0
    for xml_path in sorted((voc_dir / "Annotations").glob("*.xml")):
        ann = ET.parse(xml_path).getroot()
        names = [o.findtext("name") for o in ann.findall("object") if o.findtext("difficult") == "0"]
        multi += any(n > 1 for n in Counter(names).values())
        difficult += sum(o.findtext("difficult") == "1" for o in ann.findall("object"))
        truncated += sum(o.findtext("truncated") == "1" for o in ann.findall("object"))
        parts += len(ann.findall("object/part"))
    assert difficult > 0 and truncated > 0 and parts > 0 and multi > 0


@pytest.mark.parametrize(("year", "splits"), [
    ("2007", ("train", "val", "trainval", "test")),
    ("2012", ("train", "val", "trainval")),
])
def test_imagesets_agree_with_xml(tree2007: Path, tree2012: Path, year: str, splits: tuple[str, ...]) -> None:
    root = tree2007 if year == "2007" else tree2012
    voc_dir = _voc_dir(root, year)
    for split in splits:
        ids = _split_ids(voc_dir, split)
        per_class = {cls: _class_file(voc_dir, cls, split) for cls in VOC_CLASSES}
        for image_id in ids:
            from_xml = _xml_labels(voc_dir / "Annotations" / f"{image_id}.xml")
            assert {cls: per_class[cls][image_id] for cls in VOC_CLASSES} == from_xml
            assert 1 in from_xml.values()  # as in VOC, every image has a non-difficult object


@pytest.mark.parametrize("year", ["2007", "2012"])
def test_project_readers_agree(tree2007: Path, tree2012: Path, year: str) -> None:
    """The project's own label loader reads the same labels from both sources."""
    root = tree2007 if year == "2007" else tree2012
    voc_dir = _voc_dir(root, year)
    for split in ("train", "val", "trainval"):
        ids_xml, from_xml = load_labels(root, year, split, source="annotations", difficult="ignore")
        ids_sets, from_sets = load_labels(root, year, split, source="imagesets", difficult="ignore")
        assert ids_xml == ids_sets == _split_ids(voc_dir, split)
        np.testing.assert_array_equal(from_xml, from_sets)
        mapping = {1: 1, 0: -1, -1: 0}  # ImageSets value -> label under difficult="ignore"
        expected = np.array([[mapping[_class_file(voc_dir, c, split)[i]] for c in VOC_CLASSES] for i in ids_xml])
        np.testing.assert_array_equal(from_xml, expected)


def test_format_matches_real_voc(voc_fixtures: Path, tree2007: Path, tree2012: Path) -> None:
    """Element order and per-class line format match the real files."""
    for year, root in (("2007", tree2007), ("2012", tree2012)):
        real = ET.parse(next((voc_fixtures / "VOCdevkit" / f"VOC{year}" / "Annotations").glob("*.xml"))).getroot()
        ours = ET.parse(_annotations(root, year)[0]).getroot()
        head = [child.tag for child in real][: [child.tag for child in real].index("object")]
        assert [child.tag for child in ours][: len(head) + 1] == [*head, "object"]
        assert [c.tag for c in ours.find("object")][:5] == [c.tag for c in real.find("object")][:5]
    real_line = (voc_fixtures / "VOC2007-imagesets-full" / "ImageSets" / "Main" / "car_trainval.txt").read_bytes()
    ours_line = (_voc_dir(tree2007, "2007") / "ImageSets" / "Main" / "car_trainval.txt").read_bytes()
    assert real_line.split(b"\r\n")[0][6:] in (b" -1", b"  1", b"  0")
    assert ours_line.split(b"\r\n")[0][6:] in (b" -1", b"  1", b"  0")


# --- marker ------------------------------------------------------------------------------------


def test_marker_and_is_complete(tree2007: Path, tmp_path: Path) -> None:
    assert syn.is_complete_synthetic_voc(tree2007, N_TRAIN, N_VAL, N_TEST, "2007", 7)
    assert not syn.is_complete_synthetic_voc(tree2007, N_TRAIN, N_VAL, 0, "2007", 7)
    assert not syn.is_complete_synthetic_voc(tree2007, N_TRAIN, N_VAL, N_TEST, "2007", 8)
    assert not syn.is_complete_synthetic_voc(tree2007, N_TRAIN, N_VAL, N_TEST, "2012", 7)
    marker = json.loads((tree2007 / syn.MARKER_NAME).read_text())
    assert marker["version"] == syn.SYNTHETIC_GENERATOR_VERSION == 1
    assert not syn.is_complete_synthetic_voc(tmp_path, 1, 1)


def test_two_years_share_a_root_and_regeneration_drops_stale_lists(tmp_path: Path) -> None:
    syn.generate_synthetic_voc(tmp_path, 2, 2, 2, year="2007")
    syn.generate_synthetic_voc(tmp_path, 3, 1, year="2012")
    assert syn.is_complete_synthetic_voc(tmp_path, 2, 2, 2, "2007")
    assert syn.is_complete_synthetic_voc(tmp_path, 3, 1, 0, "2012")
    syn.generate_synthetic_voc(tmp_path, 2, 2, 0, year="2007")
    assert not (_voc_dir(tmp_path, "2007") / "ImageSets" / "Main" / "test.txt").exists()
    assert syn.is_complete_synthetic_voc(tmp_path, 2, 2, 0, "2007")
    assert not syn.is_complete_synthetic_voc(tmp_path, 2, 2, 2, "2007")


def test_interrupted_generation_is_not_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    syn.generate_synthetic_voc(tmp_path, 2, 2, year="2012")

    def boom(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_write_imagesets", boom)
    with pytest.raises(KeyboardInterrupt):
        syn.generate_synthetic_voc(tmp_path, 2, 2, year="2012")
    assert not syn.is_complete_synthetic_voc(tmp_path, 2, 2, 0, "2012")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_train": 0, "n_val": 1}, "n_train"),
    ({"n_train": 1, "n_val": 1, "n_test": -1}, "n_test"),
    ({"n_train": 1, "n_val": 1, "year": "2010"}, "Valid years"),
    ({"n_train": 1, "n_val": 1, "workers": 0}, "workers"),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        syn.generate_synthetic_voc(tmp_path, **kwargs)


# --- statistics --------------------------------------------------------------------------------


def test_class_set_statistics_match_voc2007() -> None:
    rng = np.random.default_rng(0)
    sets = [syn.sample_class_set(rng) for _ in range(5000)]
    priors = {c: sum(c in s for s in sets) / len(sets) for c in VOC_CLASSES}
    cardinality = Counter(len(s) for s in sets)
    assert abs(priors["person"] - 0.401) <= 0.05
    assert set(sorted(priors, key=priors.get)[:2]) == {"sheep", "cow"}
    assert abs(priors["sheep"] - 0.019) <= 0.01 and abs(priors["cow"] - 0.028) <= 0.01
    for cls in VOC_CLASSES:
        assert abs(priors[cls] - syn.CLASS_PRIORS[cls]) <= 0.02, cls
    assert abs(cardinality[1] / 5000 - 0.619) <= 0.05
    assert abs(cardinality[2] / 5000 - 0.313) <= 0.05
    assert all(len(set(s)) == len(s) for s in sets)


def test_exact_marginals_of_corrected_weights() -> None:
    weights = np.array(syn.class_weights())
    target = np.array([syn.CLASS_PRIORS[c] for c in VOC_CLASSES])
    np.testing.assert_allclose(stats._marginals(weights), target, rtol=1e-4)
    assert sum(syn.CLASS_PRIORS.values()) == pytest.approx(
        sum((k + 1) * p for k, p in enumerate(syn.CARDINALITY_PROBS)), abs=1e-3)


def test_image_sizes_are_voc_like() -> None:
    rng = np.random.default_rng(0)
    sizes = [syn.sample_image_size(rng) for _ in range(2000)]
    assert all(max(s) == 500 and 250 <= min(s) <= 500 for s in sizes)
    assert abs(sizes.count((500, 375)) / 2000 - 0.36) < 0.05
    assert 0.6 < sum(w > h for w, h in sizes) / 2000 < 0.9


def test_every_class_has_a_glyph() -> None:
    assert tuple(GLYPHS) == VOC_CLASSES == tuple(GLYPH_ASPECT) == tuple(syn.CLASS_PRIORS)
    assert tuple(syn.DIFFICULT_ONLY_RATES) == VOC_CLASSES


def test_every_class_has_its_own_texture_pattern() -> None:
    assert set(syn.CLASS_PATTERNS) == set(VOC_CLASSES)
    assert len(set(syn.CLASS_PATTERNS.values())) == len(VOC_CLASSES)
    rng = np.random.default_rng(0)
    for kind in syn.PATTERN_KINDS:
        pattern = paint._pattern(kind, 16.0, (64, 48), rng)
        assert pattern.shape == (48, 64) and pattern.dtype == bool
        assert 0.05 < pattern.mean() < 0.95, kind  # a texture, not a flat fill
