"""Where a backbone's initial weights come from: ImageNet (cache, weight package or hub), a local file, or none.

timm's own ``pretrained=True`` retries for about 50 s when offline. Here the decision is made up
front, in this order: weights already in the local caches (Hugging Face, torch hub) are loaded from
their file; then an installed weight package (``bench.weight_packages``, converted to timm's layout
once and cached); otherwise the hub is asked once with a short timeout, and ``auto`` falls back to
random init with a warning. A name whose tag only a weight package has (``resnet50.augnet_ssl_in1k``)
is looked for in that package alone: neither the caches nor the hub hold it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

PRETRAINED_CHOICES: tuple[str, ...] = ("auto", "imagenet", "none")
"""Besides these, ``--pretrained`` takes a path to a weights file."""

HUB_TIMEOUT_S: float = 2.0
HF_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


class WeightsUnavailableError(RuntimeError):
    """``--pretrained imagenet`` (or a file) was asked for and cannot be had."""


@dataclass(frozen=True)
class Weights:
    """What the backbone starts from, and the ``timm.create_model`` arguments that load it."""

    source: str
    """``imagenet`` (a timm pretrained tag's weights), ``file``, or ``random``."""
    description: str
    """Shown in records and leaderboards, e.g. ``imagenet (resnet50.a1_in1k)`` or ``random init``."""
    file: str | None = None
    sha256: str | None = None
    """The SHA-256 of the weights' source file where it was hashed (a weight package's checkpoint)."""
    download: bool = False
    """Whether timm should fetch the weights from the hub (only when the hub answered)."""
    cfg_overlay: tuple[tuple[str, object], ...] = ()
    """timm pretrained-config values the file comes with (a weight package's classifier size and
    preprocessing, ``WeightPackage.cfg_overlay``)."""

    def create_kwargs(self) -> dict[str, object]:
        if self.source == "random":
            return {"pretrained": False}
        if self.file is not None:
            return {"pretrained": True, "pretrained_cfg_overlay": {**dict(self.cfg_overlay), "file": self.file}}
        return {"pretrained": True}


def _pretrained_cfg(model_name: str) -> dict | None:
    import timm  # here, not at the top: the command line reads this module's choices without torch

    cfg = timm.models.get_pretrained_cfg(model_name, allow_unregistered=False)
    return None if cfg is None else cfg.to_dict()


def _cached_file(cfg: dict) -> str | None:
    """The local file of a pretrained config's weights, if a previous download left one."""
    hf_id = cfg.get("hf_hub_id")
    if hf_id:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - timm depends on huggingface_hub
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else list(HF_WEIGHT_FILES)
            for name in names:
                path = try_to_load_from_cache(hf_id, name)
                if isinstance(path, str) and os.path.isfile(path):
                    return path
    url = cfg.get("url")
    if url:
        import torch.hub

        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
        if path.is_file():
            return str(path)
    return None


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """Whether the Hugging Face hub accepts a TCP connection within ``timeout`` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_HOW_TO_SUPPLY = (
    "Download the weights on a machine with internet (timm.create_model('{name}', pretrained=True) fills the "
    "Hugging Face cache, ~/.cache/huggingface/hub, which you can copy here), or pass a local weights file with "
    "--pretrained /path/to/weights.safetensors (or .pth/.bin), or use --pretrained none for random init."
)


def _with_local_models(message: str, requested: str | None = None) -> str:
    """``message`` plus the weight sources installed as packages here (the ``--models`` name and the
    package of each), and how to install those that are not (``requested``'s own is said already)."""
    from bench.weight_packages import PACKAGES, find_package_weights

    installed = [(p, found) for p in PACKAGES if (found := find_package_weights(p.model_name)) is not None]
    missing: dict[str, list[str]] = {}
    for package in PACKAGES:
        if package.model_name != requested and all(package is not p for p, _ in installed):
            missing.setdefault(package.install, []).append(package.model_name)
    how = "; ".join(f"{command} gives {', '.join(names)}" for command, names in missing.items())
    if not installed:
        return f"{message} No weight package is installed: {how}."
    listed = ", ".join(f"{p.model_name} ({found.label})" for p, found in installed)
    message = f"{message} Weight sources installed here (--models NAME --pretrained imagenet): {listed}."
    return f"{message} Not installed: {how}." if how else message


def _package_weights(model_name: str) -> Weights | None:
    """Weights from an installed weight package, converted to timm's layout (cached)."""
    from bench.weight_packages import WeightConversionError, converted_weights_file, find_package_weights, sha256_of

    found = find_package_weights(model_name)
    if found is None:
        return None
    sha256 = sha256_of(found.file)
    try:
        converted = converted_weights_file(found, sha256)
    except WeightConversionError as err:
        raise WeightsUnavailableError(str(err)) from None
    return Weights("imagenet", found.description, file=str(converted), sha256=sha256,
                   cfg_overlay=found.package.cfg_overlay)


def _package_only_weights(model_name: str, pretrained: str) -> Weights | None:
    """The weights of a name whose tag only a weight package has (``resnet50.augnet_ssl_in1k``): from
    that package, else an error (``imagenet``) or random init with a warning (``auto``); None for any
    other name."""
    from bench.weight_packages import package_for

    package = package_for(model_name)
    if package is None or package.timm_tag:
        return None
    packaged = _package_weights(model_name)
    if packaged is not None:
        return packaged
    message = (f"{model_name}: its weights ({package.training}) come from the package {package.requirement}, "
               f"which is not installed here; {package.install} installs it")
    if "--no-deps" in package.install:
        message += f" (voc-bench only reads its checkpoint file and never imports {package.distribution})"
    if pretrained == "imagenet":
        raise WeightsUnavailableError(_with_local_models(f"{message}.", requested=model_name))
    log.warning("%s: starting %s from random init (use --pretrained none to silence this)", message, model_name)
    return Weights("random", "random init (imagenet unavailable)")


def resolve_weights(
    model_name: str,
    pretrained: str,
    *,
    hub_timeout: float = HUB_TIMEOUT_S,
    hub_answers: Callable[[], bool] | None = None,
) -> Weights:
    """Decide what ``model_name`` starts from, quickly and without timm's retry loop.

    Args:
        model_name: timm name, optionally with a pretrained tag.
        pretrained: ``auto``, ``imagenet``, ``none`` or a path to a weights file.
        hub_answers: asked instead of :func:`hub_reachable` (``resolve_all_weights`` asks the hub once).
    Raises:
        WeightsUnavailableError: ``imagenet`` weights not cached and the hub not reachable, the
            model has no pretrained weights, or the file does not exist.
    """
    if pretrained == "none":
        return Weights("random", "random init")
    if pretrained not in PRETRAINED_CHOICES:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(
                f"--pretrained {pretrained!r}: no such file. Give auto, imagenet, none, or the path of a weights file."
            )
        return Weights("file", f"file {path.name}", file=str(path.resolve()))

    package_only = _package_only_weights(model_name, pretrained)
    if package_only is not None:
        return package_only
    cfg = _pretrained_cfg(model_name)
    if cfg is None:
        message = f"timm has no pretrained weights for {model_name!r}"
        if pretrained == "imagenet":
            raise WeightsUnavailableError(_with_local_models(f"{message}. {_HOW_TO_SUPPLY.format(name=model_name)}"))
        log.warning("%s: starting %s from random init", message, model_name)
        return Weights("random", "random init")
    tag = cfg.get("tag")
    label = f"{model_name}.{tag}" if tag and "." not in model_name else model_name
    cached = _cached_file(cfg)
    if cached is not None:
        return Weights("imagenet", f"imagenet ({label})", file=cached)
    packaged = _package_weights(model_name)
    if packaged is not None:
        return packaged
    if (hub_answers or (lambda: hub_reachable(hub_timeout)))():
        return Weights("imagenet", f"imagenet ({label})", download=True)
    message = (
        f"ImageNet weights for {label} are not in the local cache and the hub did not answer within {hub_timeout:g} s"
    )
    if pretrained == "imagenet":
        raise WeightsUnavailableError(_with_local_models(f"{message}. {_HOW_TO_SUPPLY.format(name=model_name)}"))
    log.warning("%s: starting %s from random init (use --pretrained none to silence this)", message, model_name)
    return Weights("random", "random init (imagenet unavailable)")


def resolve_all_weights(
    models: Sequence[str], pretrained: str, *, hub_timeout: float = HUB_TIMEOUT_S, skippable: Collection[str] = ()
) -> dict[str, Weights]:
    """:func:`resolve_weights` for every model, before any work: the hub is asked at most once.

    With ``imagenet``, models in ``skippable`` (those a ``--models`` wildcard matched) whose weights
    cannot be had are left out of the result with a warning naming them; any other such model raises
    (a missing ``--pretrained`` file too, whatever matched).

    Raises:
        WeightsUnavailableError: for the first model outside ``skippable`` whose weights cannot be
            had, or when every model was skipped.
    """
    answer: list[bool] = []

    def hub_answers() -> bool:
        if not answer:
            answer.append(hub_reachable(hub_timeout))
        return answer[0]

    resolved: dict[str, Weights] = {}
    skipped: list[str] = []
    for model in models:
        try:
            resolved[model] = resolve_weights(model, pretrained, hub_timeout=hub_timeout, hub_answers=hub_answers)
        except WeightsUnavailableError:
            if pretrained != "imagenet" or model not in skippable:
                raise
            skipped.append(model)
    if skipped and not resolved:
        raise WeightsUnavailableError(_with_local_models(
            f"--pretrained {pretrained}: none of the models the --models patterns matched ({', '.join(skipped)}) "
            "has weights here."
        ))
    if skipped:
        log.warning("--pretrained %s: left out %s, matched by a --models pattern: no such weights here",
                    pretrained, ", ".join(skipped))
    return resolved
