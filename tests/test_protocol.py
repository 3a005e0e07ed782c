"""The protocol: flags over the data's defaults, overrides, the voc configs it builds, its hash."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from bench.cli import UsageError, build_parser, protocol_from_args
from bench.data import DataSource
from bench.protocol import COURSE_PROTOCOL, CPU_SYNTHETIC_PROTOCOL, PRECISIONS, Protocol, config_hash
from voc.config import LabelConfig, TransformConfig

REAL = DataSource(root=Path("/voc"))
SYNTHETIC = DataSource(root=Path("/synthetic"), synthetic={"seed": 0, "n_train": 4, "n_val": 2, "year": "2012"})

# flag, its value, the protocol field it sets, the value expected there; every value differs from
# both the course and the synthetic default, so a flag that sets nothing (or the wrong field) shows
FLAGS = [
    ("--year", "2007", "year", "2007"),
    ("--train-split", "trainval", "train_split", "trainval"),
    ("--eval-split", "test", "eval_split", "test"),
    ("--epochs", "3", "epochs", 3),
    ("--batch-size", "5", "batch_size", 5),
    ("--eval-batch-size", "7", "eval_batch_size", 7),
    ("--lr", "0.5", "lr", 0.5),
    ("--resize", "300", "resize", 300),
    ("--crop", "40", "crop", 40),
    ("--crops", "ten", "crop_mode", "ten"),
    ("--difficult", "ignore", "difficult", "ignore"),
    ("--label-source", "imagesets", "label_source", "imagesets"),
    ("--precision", "16-mixed", "precision", "16-mixed"),
    ("--seed", "7", "seed", 7),
    ("--limit-train-batches", "3", "limit_train_batches", 3),
    ("--limit-eval-batches", "0.5", "limit_eval_batches", 0.5),
]


def _protocol(argv: list[str], data: DataSource) -> Protocol:
    return protocol_from_args(build_parser().parse_args(argv), data)


def test_no_flags_give_the_data_default() -> None:
    assert _protocol([], REAL) == COURSE_PROTOCOL
    assert _protocol([], SYNTHETIC) == CPU_SYNTHETIC_PROTOCOL
    assert COURSE_PROTOCOL != CPU_SYNTHETIC_PROTOCOL


def test_course_protocol_is_the_course_project() -> None:
    p = COURSE_PROTOCOL
    assert (p.year, p.train_split, p.eval_split) == ("2012", "train", "val")
    assert (p.optimizer, p.lr, p.batch_size, p.epochs) == ("adam", 1e-4, 8, 10)
    assert (p.resize, p.crop, p.crop_mode, p.hflip, p.rotation) == (400, 224, "five", True, 25.0)
    assert not any(f.name in ("scheduler", "loss") for f in fields(Protocol))  # dropped: nothing applied them


@pytest.mark.parametrize(
    ("data", "base"), [(REAL, COURSE_PROTOCOL), (SYNTHETIC, CPU_SYNTHETIC_PROTOCOL)], ids=["course", "synthetic"]
)
@pytest.mark.parametrize(("flag", "value", "name", "expected"), FLAGS, ids=[f[0] for f in FLAGS])
def test_explicit_flag_wins_over_the_default(
    flag: str, value: str, name: str, expected: object, data: DataSource, base: Protocol
) -> None:
    assert getattr(COURSE_PROTOCOL, name) != expected and getattr(CPU_SYNTHETIC_PROTOCOL, name) != expected
    assert _protocol([flag, value], data) == replace(base, **{name: expected})


def test_every_flag_of_the_table_is_a_protocol_field() -> None:
    covered = {name for _, _, name, _ in FLAGS}
    not_flags = {"name", "optimizer", "weight_decay", "hflip", "rotation", "positive_only"}  # fixed by the protocol
    assert covered | not_flags == {f.name for f in fields(Protocol)}


def test_speed_uses_the_course_protocol_even_on_synthetic_data() -> None:
    assert _protocol(["--speed"], SYNTHETIC) == COURSE_PROTOCOL
    assert _protocol(["--speed", "--batch-size", "2", "--crop", "24"], SYNTHETIC) == replace(
        COURSE_PROTOCOL, batch_size=2, crop=24
    )


def test_invalid_override_is_a_usage_error() -> None:
    args = build_parser().parse_args([])
    args.precision = "fp8"  # argparse's choices stop it on the command line; the protocol checks too
    with pytest.raises(UsageError, match=r"unknown precision 'fp8'"):
        protocol_from_args(args, REAL)


def test_with_overrides_ignores_none() -> None:
    p = COURSE_PROTOCOL.with_overrides(epochs=None, lr=0.5, seed=None, limit_train_batches=None)
    assert p == replace(COURSE_PROTOCOL, lr=0.5)
    assert COURSE_PROTOCOL.with_overrides() == COURSE_PROTOCOL
    assert COURSE_PROTOCOL.lr == 1e-4  # frozen: the original is unchanged


def test_with_overrides_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match=r"unknown protocol fields \['loss', 'scheduler'\]"):
        COURSE_PROTOCOL.with_overrides(scheduler="cosine", loss="bce", lr=0.5)
    with pytest.raises(ValueError, match=r"unknown protocol fields \['scheduler'\]"):
        COURSE_PROTOCOL.with_overrides(scheduler=None)  # unknown even when None


def test_unknown_precision_is_rejected() -> None:
    assert set(PRECISIONS) == {"auto", "bf16-mixed", "16-mixed", "32-true"}
    with pytest.raises(ValueError, match=r"unknown precision 'fp8'"):
        Protocol(precision="fp8")


def test_label_config_carries_every_label_field() -> None:
    p = replace(COURSE_PROTOCOL, label_source="imagesets", difficult="ignore", positive_only=False)
    assert p.label_config() == LabelConfig(source="imagesets", difficult="ignore", positive_only=False)
    assert COURSE_PROTOCOL.label_config() == LabelConfig(source="annotations", difficult="negative", positive_only=True)
    assert {f.name for f in fields(LabelConfig)} == {"source", "difficult", "positive_only"}


def test_transform_config_carries_every_field() -> None:
    p = replace(COURSE_PROTOCOL, resize=60, crop=48, crop_mode="ten", hflip=False, rotation=7.5)
    config = p.transform_config(mean=(0.5, 0.25, 0.125), std=(1.0, 2.0, 4.0), interpolation="bicubic")
    expected = {
        "resize": 60, "crop": 48, "crop_mode": "ten", "mean": (0.5, 0.25, 0.125), "std": (1.0, 2.0, 4.0),
        "interpolation": "bicubic", "hflip": False, "rotation": 7.5,
    }
    assert {f.name: getattr(config, f.name) for f in fields(TransformConfig)} == expected
    assert (config.num_crops, config.input_size) == (10, 48)
    assert p.input_size == 48


def test_transform_config_defaults_to_imagenet_statistics() -> None:
    config = COURSE_PROTOCOL.transform_config()
    assert config.mean == (0.485, 0.456, 0.406) and config.std == (0.229, 0.224, 0.225)
    assert config.interpolation == "bilinear"
    assert CPU_SYNTHETIC_PROTOCOL.input_size == 112  # full mode: the whole resized image


def test_config_hash_is_stable() -> None:
    # the first 12 hex digits of the SHA-256 of the parts' sorted-key JSON, computed outside Python:
    # printf '%s' '[{"model": "resnet50", "pretrained": "none"}, {"epochs": 10}]' | sha256sum
    # (a changed serialisation would make --resume miss every finished record)
    assert config_hash({"model": "resnet50", "pretrained": "none"}, {"epochs": 10}) == "0e62254cef6a"
    assert config_hash({"b": 2, "a": 1}) == config_hash({"a": 1, "b": 2})  # key order does not matter
    assert config_hash(COURSE_PROTOCOL.to_dict()) == config_hash(Protocol().to_dict())


@pytest.mark.parametrize("name", [f.name for f in fields(Protocol)])
def test_config_hash_changes_with_every_protocol_field(name: str) -> None:
    base = COURSE_PROTOCOL.to_dict()
    value = base[name]
    changed = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v + 1.5, str: lambda v: v + "x"}
    base_hash = config_hash(base)
    other = changed[type(value)](value) if value is not None else 1
    assert config_hash({**base, name: other}) != base_hash
