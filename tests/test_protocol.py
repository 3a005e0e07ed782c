"""The protocol: flags over the data's defaults, overrides, the voc configs it builds, its hash."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import Field, fields, make_dataclass, replace
from pathlib import Path

import pytest

from bench.cli import UsageError, build_parser, parse_args
from bench.cli.flags import recipe_fields
from bench.cli.run import check_run_flags
from bench.cli.settings import protocol_from_args
from bench.data import DataSource
from bench.protocols import FINETUNE, get_spec, names
from bench.protocols.finetune import (
    COURSE_PROTOCOL,
    CPU_MODERN_PROTOCOL,
    CPU_SYNTHETIC_PROTOCOL,
    MODERN_PROTOCOL,
    VOC07_PROTOCOL,
    VOC07_SYNTHETIC_PROTOCOL,
)
from bench.protocols.settings import PRECISIONS, Protocol, config_hash
from voc.config import AugmentConfig, LabelConfig, TrainConfig, TransformConfig

REAL = DataSource(root=Path("/voc"))
SYNTHETIC = DataSource(root=Path("/synthetic"), synthetic={"seed": 0, "n_train": 4, "n_val": 2, "year": "2012"})

# flag, its value, the protocol field it sets, the value expected there; every value differs from
# both the course and the synthetic default, so a flag that sets nothing (or the wrong field) shows.
# The recipe's flags, made from voc.config's declarations, are checked for every declared field below.
FLAGS = [
    ("--year", "2007", "year", "2007"),
    ("--train-split", "trainval", "train_split", "trainval"),
    ("--eval-split", "test", "eval_split", "test"),
    ("--epochs", "4", "epochs", 4),
    ("--batch-size", "5", "batch_size", 5),
    ("--eval-batch-size", "7", "eval_batch_size", 7),
    ("--resize", "300", "resize", 300),
    ("--crop", "40", "crop", 40),
    ("--crops", "ten", "crop_mode", "ten"),
    ("--difficult", "ignore", "difficult", "ignore"),
    ("--label-source", "imagesets", "label_source", "imagesets"),
    ("--precision", "16-mixed", "precision", "16-mixed"),
    ("--decode", "torchvision", "decode", "torchvision"),
    ("--seed", "7", "seed", 7),
    ("--limit-train-batches", "3", "limit_train_batches", 3),
    ("--limit-eval-batches", "0.5", "limit_eval_batches", 0.5),
]

# flags that apply only with another setting: (argv, field, expected, the setting they need)
DEPENDENT_FLAGS = [
    (["--schedule-scale", "2"], "schedule_scale", 2.0, {"scheduler": "cosine"}),
    (["--ema-warmup"], "ema_warmup", True, {"ema_decay": 0.99}),
    (["--report-model", "ema"], "report_model", "ema", {"ema_decay": 0.99}),
    (["--asl-gamma-neg", "2"], "asl_gamma_neg", 2.0, {"loss": "asl"}),
    (["--asl-gamma-pos", "1"], "asl_gamma_pos", 1.0, {"loss": "asl"}),
    (["--asl-clip", "0"], "asl_clip", 0.0, {"loss": "asl"}),
    (["--randaugment", "rand-m5-n3"], "randaugment", "rand-m5-n3", {"augment": "randaugment"}),
]
_FLAG_OF = {"scheduler": "--scheduler", "ema_decay": "--ema-decay", "loss": "--loss", "augment": "--augment"}


def _protocol(argv: list[str], data: DataSource) -> Protocol:
    """The protocol a run (or, with ``speed`` first, a speed measurement) gets from ``argv``."""
    speed = argv[:1] == ["speed"]
    return protocol_from_args(parse_args(argv), data, speed=speed)


def test_augment_basic_over_a_randaugment_protocol_drops_its_config_string() -> None:
    p = _protocol(["--protocol", "modern", "--augment", "basic", "--erasing", "0"], SYNTHETIC)
    assert (p.augment, p.erasing) == ("basic", 0.0)
    assert p.transform_config().augment == "basic"
    with pytest.raises(UsageError, match="applies only with augment='randaugment'"):
        _protocol(["--protocol", "modern", "--augment", "basic", "--randaugment", "rand-m5"], SYNTHETIC)


def test_no_flags_give_the_data_default() -> None:
    assert _protocol([], REAL) == COURSE_PROTOCOL
    assert _protocol([], SYNTHETIC) == CPU_SYNTHETIC_PROTOCOL
    assert COURSE_PROTOCOL != CPU_SYNTHETIC_PROTOCOL


def test_course_protocol_is_the_course_project() -> None:
    p = COURSE_PROTOCOL
    assert (p.year, p.train_split, p.eval_split) == ("2012", "train", "val")
    assert (p.optimizer, p.lr, p.batch_size, p.epochs) == ("adam", 1e-4, 8, 10)
    assert (p.resize, p.crop, p.crop_mode, p.hflip, p.rotation) == (400, 224, "five", True, 25.0)
    # no scheduler, warmup, head multiplier or EMA; BCE; flip + rotation only; the raw model reported
    assert p.train_config() == TrainConfig(lr=1e-4, optimizer="adam", weight_decay=0.0)
    assert (p.scheduler, p.warmup, p.head_lr_mult, p.ema_decay, p.loss) == ("none", 0.0, 1.0, 0.0, "bce")
    assert (p.head_init, p.batchnorm, p.layer_decay, p.ema_horizon, p.tta) == ("random", "train", 1.0, 0.0, "none")
    assert (p.augment, p.erasing, p.report_model) == ("basic", 0.0, "raw")


@pytest.mark.parametrize(
    ("data", "base"), [(REAL, COURSE_PROTOCOL), (SYNTHETIC, CPU_SYNTHETIC_PROTOCOL)], ids=["course", "synthetic"]
)
@pytest.mark.parametrize(("flag", "value", "name", "expected"), FLAGS, ids=[f[0] for f in FLAGS])
def test_explicit_flag_wins_over_the_default(
    flag: str, value: str, name: str, expected: object, data: DataSource, base: Protocol
) -> None:
    assert getattr(COURSE_PROTOCOL, name) != expected and getattr(CPU_SYNTHETIC_PROTOCOL, name) != expected
    assert _protocol([flag, value], data) == replace(base, **{name: expected})


@pytest.mark.parametrize(("argv", "name", "expected", "needs"), DEPENDENT_FLAGS, ids=[f[0][0] for f in DEPENDENT_FLAGS])
def test_explicit_flag_wins_where_its_setting_applies(
    argv: list[str], name: str, expected: object, needs: dict[str, object]
) -> None:
    companions = [x for field, value in needs.items() for x in (_FLAG_OF[field], str(value))]
    assert _protocol([*argv, *companions], SYNTHETIC) == replace(CPU_SYNTHETIC_PROTOCOL, **needs, **{name: expected})
    with pytest.raises(UsageError, match=rf"^{argv[0]}: "):
        _protocol(argv, SYNTHETIC)  # alone it would be recorded but not applied; the error names the flag


def _away_from(value: object, declared: Field) -> object:
    """A valid value of a declared recipe field other than ``value`` (its ``voc07`` value)."""
    if "choices" in declared.metadata:
        return next(choice for choice in reversed(declared.metadata["choices"]) if choice != value)
    if declared.type == "bool":
        return not value
    if declared.type == "str":
        return "rand-m5"
    if isinstance(value, int):
        return value // 2
    return value / 2 if value else 0.5


@pytest.mark.parametrize("declared", recipe_fields(), ids=lambda f: f.name)
def test_every_declared_recipe_field_is_a_flag_that_sets_it(declared: Field) -> None:
    """Over ``voc07`` (OneCycle, EMA, ASL and RandAugment all on, so every setting applies)."""
    name, flag = declared.name, "--" + declared.name.replace("_", "-")
    value = _away_from(getattr(VOC07_PROTOCOL, name), declared)
    argv = [("--no-" + flag[2:]) if value is False else flag] if isinstance(value, bool) else [flag, str(value)]
    needs = {"ema_decay": 0.0} if name == "ema_horizon" else {}  # a horizon in place of voc07's fixed decay
    companions = [x for field, v in needs.items() for x in (_FLAG_OF[field], str(v))]
    assert (_protocol(["--protocol", "voc07", *argv, *companions], REAL)
            == replace(VOC07_PROTOCOL, **needs, **{name: value}))
    action = next(a for a in build_parser().jobs["run"]._actions if flag in a.option_strings)
    assert declared.metadata["help"] in action.help and action.default is None
    assert action.choices == declared.metadata.get("choices")


def test_every_recipe_setting_is_declared_once() -> None:
    """TrainConfig's and AugmentConfig's fields are all flags and all Protocol fields, inherited: the
    Protocol class body declares none of them again, and its field is the declaration itself."""
    declared = {f.name for f in recipe_fields()}
    assert {f.name for f in (*fields(TrainConfig), *fields(AugmentConfig))} == declared
    assert not declared & set(Protocol.__annotations__)
    protocol_fields = {f.name: f for f in fields(Protocol)}
    for f in recipe_fields():
        assert protocol_fields[f.name].metadata["help"] == f.metadata["help"]
        assert protocol_fields[f.name].default == f.default


def test_every_flag_of_the_table_is_a_protocol_field() -> None:
    covered = {name for _, _, name, _ in FLAGS} | {name for _, name, _, _ in DEPENDENT_FLAGS}
    covered |= {f.name for f in recipe_fields()}
    not_flags = {"name", "hflip", "rotation", "positive_only"}  # fixed by the protocol
    assert covered | not_flags == {f.name for f in fields(Protocol)}


@pytest.mark.parametrize("name", names(FINETUNE))
def test_protocol_flag_selects_the_named_protocol_for_the_data(name: str) -> None:
    real, synthetic = get_spec(name).default(False), get_spec(name).default(True)
    assert _protocol(["--protocol", name], REAL) == real
    assert _protocol(["--protocol", name], SYNTHETIC) == synthetic
    assert real.name == synthetic.name == name
    assert _protocol(["speed", "--protocol", name], SYNTHETIC) == real  # speed: the real-VOC shapes
    # explicit flags still win over the named protocol's values
    assert _protocol(["--protocol", name, "--lr", "0.5", "--optimizer", "sgd"], SYNTHETIC) == replace(
        synthetic, lr=0.5, optimizer="sgd"
    )


def test_registry_names_every_protocol() -> None:
    assert names(FINETUNE) == ("course", "voc07", "modern", "lpft")
    assert set(names()) == {*names(FINETUNE), "linear", "lowshot", "knn"}
    assert parse_args(["--protocol", "voc07"]).protocol == "voc07"
    with pytest.raises(ValueError, match=r"unknown protocol 'vissl'; valid values are \['course'"):
        get_spec("vissl")


def test_a_fine_tuning_protocol_is_declared_with_settings_of_its_name() -> None:
    from bench.protocols.finetune import FinetuneSpec

    with pytest.raises(ValueError, match="protocol 'mine' declared with settings named 'course'"):
        FinetuneSpec("mine", "help", COURSE_PROTOCOL, CPU_SYNTHETIC_PROTOCOL)


def test_voc07_is_the_asl_recipe() -> None:
    p = VOC07_PROTOCOL
    assert (p.year, p.train_split, p.eval_split, p.difficult, p.positive_only) == ("2007", "trainval", "test",
                                                                                  "ignore", False)
    assert (p.resize, p.crop_mode, p.input_size, p.batch_size) == (448, "full", 448, 128)
    assert (p.optimizer, p.lr, p.weight_decay) == ("adam", 1e-4, 1e-4)
    # OneCycle over 80 epochs with pct_start 0.2 (16 epochs of rise), stopped after 40: as shares of the run
    assert (p.scheduler, p.schedule_scale, p.epochs, p.warmup) == ("onecycle", 2.0, 40, 0.2)
    assert (p.ema_decay, p.ema_warmup, p.report_model) == (0.9997, False, "raw")
    assert (p.loss, p.asl_gamma_neg, p.asl_gamma_pos, p.asl_clip) == ("asl", 4.0, 0.0, 0.05)
    assert (p.hflip, p.rotation, p.augment, p.erasing) == (False, 0.0, "randaugment", 1.0)
    assert replace(p, year="2012", train_split="train", eval_split="val") == VOC07_SYNTHETIC_PROTOCOL


def test_modern_is_one_recipe_and_its_cpu_variant_only_scales_it() -> None:
    p = MODERN_PROTOCOL
    assert (p.optimizer, p.scheduler, p.weight_decay, p.report_model) == ("adamw", "cosine", 0.05, "ema")
    assert p.warmup > 0 and p.ema_decay > 0 and p.augment == "randaugment" and p.erasing > 0
    scaled = {"epochs", "batch_size", "lr", "resize", "crop"}
    real, cpu = p.to_dict(), CPU_MODERN_PROTOCOL.to_dict()
    assert {k for k in real if real[k] != cpu[k]} == scaled
    # the course protocol's CPU-sized view and batch; 6 epochs to the default's 2 (its schedule needs the steps)
    for field in ("batch_size", "eval_batch_size", "resize", "crop", "crop_mode"):
        assert getattr(CPU_MODERN_PROTOCOL, field) == getattr(CPU_SYNTHETIC_PROTOCOL, field)
    assert (CPU_MODERN_PROTOCOL.epochs, CPU_SYNTHETIC_PROTOCOL.epochs) == (6, 2)


def test_a_recipe_setting_that_would_not_apply_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"report_model 'ema' need an EMA"):
        _protocol(["--protocol", "modern", "--ema-decay", "0"], SYNTHETIC)
    with pytest.raises(UsageError, match=r"--scheduler.*'onecycle' needs warmup > 0"):
        _protocol(["--scheduler", "onecycle"], REAL)
    with pytest.raises(UsageError, match=r"--schedule-scale.*must be at least 1"):
        _protocol(["--protocol", "voc07", "--schedule-scale", "0.5"], REAL)


@pytest.mark.parametrize(("argv", "flag"), [
    (["--warmup", "1.5"], "--warmup"),
    (["--layer-decay", "0"], "--layer-decay"),
    (["--ema-horizon", "2"], "--ema-horizon"),
    (["--crop-scale", "0"], "--crop-scale"),
    (["--rotation", "-5"], "--rotation"),
    (["--protocol", "modern", "--ema-horizon", "0.1"], "--ema-horizon"),
])
def test_a_bad_value_of_a_recipe_setting_is_a_usage_error_naming_its_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(UsageError) as caught:
        _protocol(argv, REAL)
    assert str(caught.value).startswith(flag + ":"), str(caught.value)


@pytest.mark.parametrize("argv", [["--head-init", "imagenet"], ["--batchnorm", "eval"], ["--tta", "ten"]])
def test_an_unknown_choice_of_a_new_setting_is_refused_naming_the_flag(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2
    assert f"argument {argv[0]}: invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--scheduler", "cosine"], ["--ema-decay", "0.9"], ["--eval-every", "1"],
                                  ["--no-ema-warmup"], ["--rotation", "10"], ["--no-hflip"]])
def test_fine_tuning_flags_are_rejected_by_frozen_protocols(argv: list[str]) -> None:
    with pytest.raises(UsageError, match=r"--protocol linear trains no backbone"):
        check_run_flags(parse_args(["--protocol", "linear", *argv]))


def test_eval_every_must_be_a_positive_number_of_epochs() -> None:
    with pytest.raises(UsageError, match=r"--eval-every: a number of epochs, at least 1, not 0"):
        check_run_flags(parse_args(["--eval-every", "0"]))


def test_speed_uses_the_course_protocol_even_on_synthetic_data() -> None:
    assert _protocol(["speed"], SYNTHETIC) == COURSE_PROTOCOL
    assert _protocol(["speed", "--batch-size", "2", "--crop", "24"], SYNTHETIC) == replace(
        COURSE_PROTOCOL, batch_size=2, crop=24
    )


def test_invalid_override_is_a_usage_error() -> None:
    args = parse_args([])
    args.precision = "fp8"  # argparse's choices stop it on the command line; the protocol checks too
    with pytest.raises(UsageError, match=r"unknown precision 'fp8'"):
        protocol_from_args(args, REAL)


def test_with_overrides_ignores_none() -> None:
    p = COURSE_PROTOCOL.with_overrides(epochs=None, lr=0.5, seed=None, limit_train_batches=None)
    assert p == replace(COURSE_PROTOCOL, lr=0.5)
    assert COURSE_PROTOCOL.with_overrides() == COURSE_PROTOCOL
    assert COURSE_PROTOCOL.lr == 1e-4  # frozen: the original is unchanged


def test_with_overrides_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match=r"unknown protocol fields \['dropout', 'momentum'\]"):
        COURSE_PROTOCOL.with_overrides(momentum=0.9, dropout=0.1, lr=0.5)
    with pytest.raises(ValueError, match=r"unknown protocol fields \['momentum'\]"):
        COURSE_PROTOCOL.with_overrides(momentum=None)  # unknown even when None


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
    p = replace(COURSE_PROTOCOL, resize=60, crop=48, crop_mode="ten", hflip=False, rotation=7.5,
                augment="randaugment", randaugment="rand-m3", erasing=0.5, crop_scale=0.5, decode="torchvision")
    config = p.transform_config(mean=(0.5, 0.25, 0.125), std=(1.0, 2.0, 4.0), interpolation="bicubic")
    expected = {
        "resize": 60, "crop": 48, "crop_mode": "ten", "mean": (0.5, 0.25, 0.125), "std": (1.0, 2.0, 4.0),
        "interpolation": "bicubic", "hflip": False, "rotation": 7.5, "augment": "randaugment",
        "randaugment": "rand-m3", "erasing": 0.5, "crop_scale": 0.5, "decode": "torchvision",
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


COMMITTED_CONFIG_KEYS: tuple[str, ...] = (
    "name", "year", "train_split", "eval_split", "epochs", "batch_size", "eval_batch_size", "lr", "optimizer",
    "weight_decay", "resize", "crop", "crop_mode", "hflip", "rotation", "difficult", "label_source", "positive_only",
    "precision", "seed", "limit_train_batches", "limit_eval_batches", "head_lr_mult", "scheduler", "warmup",
    "schedule_scale", "ema_decay", "ema_warmup", "report_model", "loss", "asl_gamma_neg", "asl_gamma_pos",
    "asl_clip", "augment", "randaugment", "erasing", "decode", "head_init",
)
"""The keys of a ``modern`` record's ``config``, in order, as the committed records
(results/voc07-real-dev/tf_efficientnet_lite2-modern/result.json lists all but ``decode``, which is
written only where it is not PIL)."""


def _fields_up_to_decode() -> set[str]:
    """The fields the course records knew, ``decode`` the last (fields added since are written only
    where they differ from their default)."""
    return set(COMMITTED_CONFIG_KEYS[: COMMITTED_CONFIG_KEYS.index("decode") + 1])


def test_record_keys_and_their_order_are_the_committed_records() -> None:
    committed = json.loads((Path(__file__).resolve().parents[1] / "results" / "voc07-real-dev"
                            / "tf_efficientnet_lite2-modern" / "result.json").read_text(encoding="utf-8"))
    assert list(committed["config"]) == [key for key in COMMITTED_CONFIG_KEYS if key != "decode"]
    assert list(replace(MODERN_PROTOCOL, decode="torchvision").to_dict()) == list(COMMITTED_CONFIG_KEYS)


def test_course_records_and_hashes_are_what_they_were_before_the_recipe_fields() -> None:
    # printed by the code before the recipe fields existed (commit af577d2), the hashes --resume and the
    # committed records (results/*/result.json) carry
    assert config_hash(COURSE_PROTOCOL.to_dict()) == "54f3148ecf8a"
    assert config_hash(replace(CPU_SYNTHETIC_PROTOCOL, epochs=6).to_dict()) == "af6a5b1adc9f"  # its 6-epoch size
    # decode: in the record only where it is not PIL, the decoder records before it existed used
    assert set(COURSE_PROTOCOL.to_dict()) == _fields_up_to_decode() - set(Protocol.RECIPE_FIELDS) - {"decode"}
    # any recipe setting away from the course's puts every recipe field in the record
    assert set(replace(COURSE_PROTOCOL, erasing=0.1).to_dict()) == _fields_up_to_decode() - {"decode"}
    assert replace(COURSE_PROTOCOL, erasing=0.1).to_dict()["scheduler"] == "none"


def test_a_field_added_later_leaves_every_hash_as_it_was() -> None:
    """A recipe setting added after ``decode`` is written only where it differs from its default, so
    the committed records' hashes (course's and voc07's alike) stay valid."""
    new_setting = ("new_setting", float, dataclasses.field(default=0.0))
    later = make_dataclass("Later", [new_setting], bases=(Protocol,), frozen=True)
    assert config_hash(later().to_dict()) == "54f3148ecf8a"  # COURSE_PROTOCOL's
    as_voc07 = later(**{f.name: getattr(VOC07_PROTOCOL, f.name) for f in fields(Protocol)})
    assert as_voc07.to_dict() == VOC07_PROTOCOL.to_dict()
    assert replace(as_voc07, new_setting=0.5).to_dict() == {**VOC07_PROTOCOL.to_dict(), "new_setting": 0.5}


def test_train_config_carries_every_recipe_field() -> None:
    p = VOC07_PROTOCOL
    config = p.train_config()
    assert {f.name for f in fields(TrainConfig)} <= {f.name for f in fields(Protocol)}
    for f in fields(TrainConfig):
        assert getattr(config, f.name) == getattr(p, f.name), f.name


@pytest.mark.parametrize("name", [f.name for f in fields(Protocol)])
def test_config_hash_changes_with_every_protocol_field(name: str) -> None:
    # a recipe away from the course's, decoded by torchvision: every field is in its record
    base = replace(VOC07_PROTOCOL, decode="torchvision").to_dict()
    value = base.get(name, getattr(VOC07_PROTOCOL, name))  # a field added after decode: absent at its default
    changed = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v + 1.5, str: lambda v: v + "x"}
    base_hash = config_hash(base)
    other = changed[type(value)](value) if value is not None else 1
    assert config_hash({**base, name: other}) != base_hash
