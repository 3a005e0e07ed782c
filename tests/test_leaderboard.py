"""Leaderboard built from records: order, formatting, failed runs, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report.leaderboard import COLUMNS, render_markdown, write_leaderboard
from bench.report.summary import summarize
from bench.store import LEADERBOARD_CSV, LEADERBOARD_MD, RESULT_FILE, RunRecord, read_runs
from voc.constants import VOC_CLASSES
from voc.io import write_json_atomic


def _config(**fields: object) -> dict:
    """A record's ``config``: the course protocol, seed 0, unless ``fields`` say otherwise."""
    return {"name": "course", "seed": 0, **fields}


def _record(model: str, mAP: float | None, status: str = "ok", error: str | None = None) -> dict:
    """A record's JSON as the store writes it (``RunRecord.to_dict``)."""
    metrics = None
    if mAP is not None:
        metrics = {
            "accuracy": 0.9,
            "mAP": mAP,
            "tail_accuracy": 0.8,
            "per_class": {c: {"ap": mAP if i else None} for i, c in enumerate(VOC_CLASSES)},
        }
    return RunRecord(
        model=model,
        status=status,
        error=error,
        weights="random init",
        dataset={"description": "synthetic VOC2012 train→val", "root": "/s", "year": "2012", "eval_split": "val"},
        config=_config(epochs=2),
        metrics=metrics,
        throughput={"train_images_per_s": 12.345, "eval_images_per_s": 50.0} if status == "ok" else None,
        params=23_500_000,
        command="python benchmark.py --models a b",
    ).to_dict()


def _write(out: Path, records: list[dict]) -> None:
    for r in records:
        write_json_atomic(out / r["model"] / RESULT_FILE, r)


def test_ranked_by_map_with_failed_runs_apart(tmp_path: Path) -> None:
    _write(
        tmp_path,
        [
            _record("low", 0.51234),
            _record("high", 0.72864),
            _record("broken", None, "failed", "NonFiniteLossError: loss nan"),
        ],
    )
    md_path, csv_path = write_leaderboard(tmp_path)
    md = md_path.read_text()
    assert "python benchmark.py --models a b" in md
    assert md.index("| high") < md.index("| low")
    assert "0.7286" in md and "0.5123" in md  # four decimals, like the course project's 0.7286
    table = md.split("## Failed runs")[0]
    assert "broken" not in table
    failed = md.split("## Failed runs")[1].split("## Per-class AP")[0]
    assert "broken" in failed and "loss nan" in failed
    assert "## Per-class AP" in md
    header = next(line for line in md.splitlines() if line.startswith("| rank"))
    columns = ("rank", "model", "weights", "params (M)", "accuracy", "mAP", "tail acc.", "train img/s", "eval img/s",
               "epochs", "data")
    for col in columns:
        assert col in header
    frame = pd.read_csv(csv_path)
    assert list(frame["model"]) == ["high", "low"]
    assert list(frame["rank"]) == [1, 2]
    assert frame.loc[0, "params (M)"] == 23.5


def test_same_records_give_byte_identical_files(tmp_path: Path) -> None:
    _write(tmp_path, [_record("b", 0.6), _record("a", 0.6), _record("c", 0.7)])
    md1, csv1 = (p.read_bytes() for p in write_leaderboard(tmp_path))
    md2, csv2 = (p.read_bytes() for p in write_leaderboard(tmp_path))
    assert md1 == md2 and csv1 == csv2
    # ties broken by name
    md = md1.decode()
    assert md.index("| a ") < md.index("| b ")


def test_unreadable_record_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path, [_record("ok", 0.6)])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / RESULT_FILE).write_text("{not json")
    write_leaderboard(tmp_path)
    assert "| ok" in (tmp_path / LEADERBOARD_MD).read_text()


def test_empty_folder_gives_a_valid_page(tmp_path: Path) -> None:
    write_leaderboard(tmp_path)
    assert "No successful runs yet." in (tmp_path / LEADERBOARD_MD).read_text()
    assert (tmp_path / LEADERBOARD_CSV).read_text().startswith("rank,protocol,ranked_by,model")


def test_missing_values_shown_as_dash(tmp_path: Path) -> None:
    r = _record("x", 0.5)
    r["metrics"]["tail_accuracy"] = None
    _write(tmp_path, [r])
    row = next(line for line in render_markdown(summarize(read_runs(tmp_path))).splitlines() if line.startswith("| 1 "))
    assert row.split("|")[COLUMNS.index("tail acc.") + 1].strip() == "–"


def test_records_are_json(tmp_path: Path) -> None:
    _write(tmp_path, [_record("x", 0.5)])
    assert json.loads((tmp_path / "x" / RESULT_FILE).read_text())["model"] == "x"


def _sweep_writer(out: str, names: list[str]) -> None:
    for name in names:
        write_json_atomic(Path(out) / name / RESULT_FILE, _record(name, 0.5))
        write_leaderboard(out)


def test_two_concurrent_sweeps_lose_no_row(tmp_path: Path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    a = ctx.Process(target=_sweep_writer, args=(str(tmp_path), [f"a{i}" for i in range(15)]))
    b = ctx.Process(target=_sweep_writer, args=(str(tmp_path), [f"b{i}" for i in range(15)]))
    a.start(), b.start()
    a.join(60), b.join(60)
    assert a.exitcode == 0 and b.exitcode == 0
    frame = pd.read_csv(tmp_path / LEADERBOARD_CSV)
    assert sorted(frame["model"]) == sorted([f"a{i}" for i in range(15)] + [f"b{i}" for i in range(15)])


def test_csv_carries_all_three_ap_definitions_as_means_over_seeds(tmp_path: Path) -> None:
    runs = []
    for seed, (ap, ap07, ap12) in enumerate([(0.50, 0.52, 0.53), (0.60, 0.61, 0.64)]):
        r = _record("m", ap)
        r["metrics"].update(map_voc07=ap07, map_voc12=ap12)
        r["config"] = _config(epochs=2, seed=seed)
        runs.append(r)
    for seed, r in enumerate(runs):
        write_json_atomic(tmp_path / f"m-seed{seed}" / RESULT_FILE, r)
    _, csv_path = write_leaderboard(tmp_path, settings=None)
    frame = pd.read_csv(csv_path)
    assert frame.loc[0, "mAP"] == pytest.approx(0.55)
    assert frame.loc[0, "map_voc07"] == pytest.approx(0.565)
    assert frame.loc[0, "map_voc12"] == pytest.approx(0.585)
    assert list(frame.columns).index("map_voc07") == list(frame.columns).index("mAP") + 1
    assert frame.loc[0, "ranked_by"] == "mAP"


@pytest.mark.parametrize(
    ("ap", "leader", "header", "ranked_by"),
    [("sklearn", "a", "mAP (non-interp.)", "mAP"), ("voc07", "b", "mAP (VOC07 11-pt)", "map_voc07"),
     ("voc12", "a", "mAP (VOC2010+)", "map_voc12")],
)
def test_ap_flag_picks_the_definition_ranked_and_shown(
    tmp_path: Path, ap: str, leader: str, header: str, ranked_by: str
) -> None:
    # a leads under sklearn and voc12, b under voc07; two seeds each for the seed spread
    values = {"a": [(0.60, 0.50, 0.70), (0.62, 0.52, 0.72)], "b": [(0.40, 0.55, 0.45), (0.44, 0.57, 0.47)]}
    for model, seeds in values.items():
        for seed, (ap_, ap07, ap12) in enumerate(seeds):
            r = _record(model, ap_)
            r["metrics"].update(map_voc07=ap07, map_voc12=ap12)
            r["metrics"]["per_class"] = {"cat": {"ap": ap_, "ap_voc07": ap07, "ap_voc12": ap12}}
            r["config"] = _config(epochs=2, seed=seed)
            write_json_atomic(tmp_path / f"{model}-seed{seed}" / RESULT_FILE, r)
    md_path, csv_path = write_leaderboard(tmp_path, settings=None, ap=ap)
    frame = pd.read_csv(csv_path)
    assert frame.loc[0, "model"] == leader and list(frame["ranked_by"]) == [ranked_by] * 2
    metric = {"sklearn": 0, "voc07": 1, "voc12": 2}[ap]
    expected_std = np.std([s[metric] for s in values[leader]], ddof=1)
    assert frame.loc[0, "ranked_map_seed_std"] == pytest.approx(expected_std, rel=1e-5)  # 6 significant digits
    assert frame.loc[0, "cat"] == pytest.approx(np.mean([s[metric] for s in values[leader]]))
    text = md_path.read_text()
    header_row = next(line for line in text.splitlines() if line.startswith("| rank"))
    assert f" {header} " in header_row
    row = next(line for line in text.splitlines() if line.startswith("| 1 "))
    assert f"{np.mean([s[metric] for s in values[leader]]):.4f}" in row


def test_unknown_ap_definition_is_refused_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--ap: unknown AP definition 'voc10'"):
        write_leaderboard(tmp_path, settings=None, ap="voc10")


def test_protocols_get_their_own_tables_and_leaders(tmp_path: Path) -> None:
    course_low, course_high = _record("c-low", 0.30), _record("c-high", 0.40)
    linear = _record("l-only", 0.90)  # best mAP overall, but of another protocol
    linear["config"] = _config(epochs=0, name="linear", probe="svm")
    _write(tmp_path, [course_low, course_high, linear])
    md_path, csv_path = write_leaderboard(tmp_path, settings=None)
    md = md_path.read_text()
    course, linear_part = md.split("## Protocol `course`")[1].split("## Protocol `linear`")
    course_table = course.split("## Per-class AP")[0]
    assert course_table.index("| 1      | c-high") < course_table.index("| 2      | c-low")
    assert "l-only" not in course_table
    assert "| 1      | l-only" in linear_part.split("## Per-class AP")[0]
    frame = pd.read_csv(csv_path)
    assert list(zip(frame["protocol"], frame["model"], frame["rank"], strict=True)) == [
        ("course", "c-high", 1), ("course", "c-low", 2), ("linear", "l-only", 1),
    ]


def test_each_table_states_its_training_budget_in_its_header(tmp_path: Path) -> None:
    view = {"batch_size": 8, "resize": 224, "crop": 224, "crop_mode": "full"}
    a, b = _record("a", 0.5), _record("b", 0.4)
    a["config"] = b["config"] = _config(epochs=5, **view)
    prior = _record("prior-baseline", 0.1)
    prior["config"] = _config(epochs=0, **view)
    m1, m2 = _record("m1", 0.6), _record("m2", 0.7)
    m1["config"] = _config(name="modern", epochs=5, batch_size=32, resize=400, crop=224, crop_mode="five")
    m2["config"] = dict(m1["config"], epochs=6)
    linear = _record("l", 0.9)
    linear["config"] = _config(epochs=0, name="linear", probe="svm")
    _write(tmp_path, [a, b, prior, m1, m2, linear])
    md = write_leaderboard(tmp_path, settings=None)[0].read_text()
    headings = [line for line in md.splitlines() if line.startswith("## Protocol")]
    assert sorted(headings) == [
        "## Protocol `course`: 5 epochs at batch 8, whole image at 224 px",
        "## Protocol `linear`",
        "## Protocol `modern`: budgets differ between rows",
    ]
    assert ("Budgets: 6 epochs at batch 32, resize 400 → five crops of 224 px (m2); 5 epochs at batch 32, resize 400 → "
            "five crops of 224 px (m1).") in md.splitlines()
    _write(tmp_path, [dict(m1, config=dict(m1["config"], name="course"))])  # a single table: a line above it
    for name in ("a", "b", "prior-baseline", "m2", "l"):
        (tmp_path / name / RESULT_FILE).unlink()
    md = write_leaderboard(tmp_path, settings=None)[0].read_text()
    assert "Protocol `course`: 5 epochs at batch 32, resize 400 → five crops of 224 px." in md.splitlines()


def _with_windows(r: dict, train: tuple[float, float, float], eval_: tuple[float, float, float] | None = None) -> dict:
    """``r`` with the meter's median and window range (a record written since the meter kept windows)."""
    for stage, (median, low, high) in (("train", train), ("eval", eval_ or (50.0, 40.0, 60.0))):
        r["throughput"].update({f"{stage}_images_per_s": median, f"{stage}_images_per_s_min": low,
                                f"{stage}_images_per_s_max": high, f"{stage}_windows": 4})
    return r


def test_throughput_ranges_in_both_tables_empty_where_a_record_has_none(tmp_path: Path) -> None:
    _write(tmp_path, [_with_windows(_record("new", 0.6), (12.0, 10.5, 13.25)), _record("old", 0.5)])
    md_path, csv_path = write_leaderboard(tmp_path, settings=None)
    frame = pd.read_csv(csv_path)
    columns = list(frame.columns)
    at = columns.index("train img/s min")
    assert columns[at:at + 4] == ["train img/s min", "train img/s max", "eval img/s min", "eval img/s max"]
    assert columns[at - 1] == VOC_CLASSES[-1]  # after every fixed column: an older CSV's columns keep their places
    new, old = frame.iloc[0], frame.iloc[1]
    assert (new["train img/s"], new["train img/s min"], new["train img/s max"]) == (12.0, 10.5, 13.25)
    assert (new["eval img/s min"], new["eval img/s max"]) == (40.0, 60.0)
    assert old[["train img/s min", "train img/s max", "eval img/s min", "eval img/s max"]].isna().all()
    lines = md_path.read_text().splitlines()
    cells = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[1:-1]]
             for line in lines if line.startswith(("| 1 ", "| 2 "))}
    train_at = COLUMNS.index("train img/s")
    assert cells["new"][train_at:train_at + 2] == ["12.0 (10.5–13.2)", "50.0 (40.0–60.0)"]
    assert cells["old"][train_at:train_at + 2] == ["12.3", "50.0"]
    assert "slowest and the fastest window" in md_path.read_text()


def test_records_without_ranges_give_the_csv_and_page_they_gave_before(tmp_path: Path) -> None:
    _write(tmp_path, [_record("a", 0.6), _record("b", 0.5)])
    md_path, csv_path = write_leaderboard(tmp_path, settings=None)
    assert "img/s min" not in csv_path.read_text()
    assert pd.read_csv(csv_path).columns[-1] == VOC_CLASSES[-1]
    assert "window" not in md_path.read_text()


def test_throughput_range_over_seeds_is_the_slowest_and_fastest_window(tmp_path: Path) -> None:
    for seed, train in enumerate([(10.0, 9.0, 11.0), (14.0, 12.0, 15.0)]):
        r = _with_windows(_record("m", 0.5), train)
        r["config"] = _config(epochs=2, seed=seed)
        write_json_atomic(tmp_path / f"m-seed{seed}" / RESULT_FILE, r)
    (summary,) = summarize(read_runs(tmp_path), settings=None)
    assert summary.mean["train_images_per_s"] == 12.0  # the mean of the seeds' medians
    assert summary.throughput_range["train_images_per_s"] == (9.0, 15.0)
    # a seed without a range (an older record): no range rather than one that leaves that seed out
    r = _record("m", 0.5)
    r["config"] = _config(epochs=2, seed=2)
    write_json_atomic(tmp_path / "m-seed2" / RESULT_FILE, r)
    (summary,) = summarize(read_runs(tmp_path), settings=None)
    assert summary.throughput_range == {}


def test_several_protocols_open_with_an_overview_of_each_models_map_under_each(tmp_path: Path) -> None:
    a_course, b_course = _record("x", 0.30), _record("y", 0.40)
    for r in (a_course, b_course):
        r["config"] = _config(epochs=3, batch_size=8, resize=224, crop=224, crop_mode="full")
    a_linear = _record("x", 0.90)
    a_linear["config"] = _config(epochs=0, name="linear", probe="svm")
    prior = _record("prior-baseline", 0.07)
    prior["config"] = _config(epochs=0, name="linear")
    for folder, r in (("x", a_course), ("y", b_course), ("x-linear", a_linear), ("prior-baseline-linear", prior)):
        write_json_atomic(tmp_path / folder / RESULT_FILE, r)
    md = write_leaderboard(tmp_path, settings=None)[0].read_text()
    overview = md.split("## Overview")[1].split("## Protocol")[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in overview.splitlines()
            if line.startswith("|")]
    course_heading = "## Protocol `course`: 3 epochs at batch 8, whole image at 224 px"
    assert course_heading in md and md.index("## Overview") < md.index(course_heading)
    # one column per protocol, linked to its table's GitHub anchor; a row per model, the prior last
    assert rows[0] == ["model", "weights", "[`course`](#protocol-course-3-epochs-at-batch-8-whole-image-at-224-px)",
                       "[`linear`](#protocol-linear)"]
    assert rows[2:] == [
        ["x", "random init", "0.3000", "0.9000"],
        ["y", "random init", "0.4000", "–"],
        ["prior-baseline", "random init", "–", "0.0700"],
    ]
    # a folder of one protocol has no overview
    for folder in ("x-linear", "prior-baseline-linear"):
        (tmp_path / folder / RESULT_FILE).unlink()
    assert "## Overview" not in write_leaderboard(tmp_path, settings=None)[0].read_text()


def test_each_table_drops_the_columns_empty_in_all_its_rows(tmp_path: Path) -> None:
    course = _record("c", 0.40)
    linear = _record("l", 0.90)
    linear["config"] = _config(name="linear", probe="svm")
    linear["throughput"] = {"train_images_per_s": None, "eval_images_per_s": None,
                            "feature_train_images_per_s": 30.0, "feature_eval_images_per_s": 40.0}
    _write(tmp_path, [course, linear])
    md_path, csv_path = write_leaderboard(tmp_path, settings=None)
    course_part, linear_part = md_path.read_text().split("## Protocol `course`")[1].split("## Protocol `linear`")
    course_header = course_part.split("| rank")[1].split("\n")[0]
    linear_header = linear_part.split("| rank")[1].split("\n")[0]
    assert "train img/s" in course_header and "epochs" in course_header and "feature img/s" not in course_header
    assert "feature img/s" in linear_header and not {"train img/s", "eval img/s", "epochs"} & {
        c.strip() for c in linear_header.split("|")}
    assert "| 35.0 " in linear_part  # the mean of the two splits' extraction rates
    frame = pd.read_csv(csv_path).set_index("model")
    assert frame.loc["l", "feature img/s"] == 35.0 and np.isnan(frame.loc["c", "feature img/s"])
