"""Backbone registry: timm is the registry; this module resolves names and holds overrides.

``resolve_models`` turns timm model names (optionally with a pretrained tag, ``resnet50.a1_in1k``)
and fnmatch wildcards over ``timm.list_models`` into a list of names, failing before any work on
a name timm does not know, with the closest valid names as suggestions.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import timm


class UnknownModelError(ValueError):
    """A model name or pattern that timm does not know."""


@dataclass(frozen=True)
class BackboneSpec:
    """Per-backbone overrides of the shared protocol: extra ``timm.create_model`` arguments."""

    create_kwargs: Mapping[str, object] = field(default_factory=dict)
    note: str = ""


OVERRIDES: Mapping[str, BackboneSpec] = MappingProxyType({})
"""Overrides by architecture name. Empty: every backbone runs under the protocol as it is."""


def backbone_spec(model_name: str) -> BackboneSpec:
    """The overrides for ``model_name`` (its architecture, without a pretrained tag)."""
    return OVERRIDES.get(architecture(model_name), BackboneSpec())


def architecture(model_name: str) -> str:
    """``resnet50.a1_in1k`` → ``resnet50``."""
    return model_name.split(".", 1)[0]


def is_pattern(name: str) -> bool:
    """Whether a ``--models`` name is an fnmatch wildcard."""
    return any(ch in name for ch in "*?[")


def suggest(name: str, n: int = 3) -> list[str]:
    """The closest timm model names to ``name``."""
    candidates = timm.list_models()
    lowered = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(architecture(name).lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[m] for m in matches]


def resolve_models(names: Sequence[str]) -> list[str]:
    """Expand wildcards and check every name; order kept, duplicates dropped.

    Raises:
        UnknownModelError: for a name timm does not know (with suggestions) or a pattern that
            matches no model.
    """
    if not names:
        raise UnknownModelError("no model given: pass --models with one or more timm model names")
    resolved: list[str] = []
    for name in names:
        if is_pattern(name):
            matches = timm.list_models(name)
            if not matches:
                raise UnknownModelError(
                    f"--models pattern {name!r} matches no timm model; "
                    "see timm.list_models() for the names (patterns are fnmatch wildcards, e.g. 'resnet*')"
                )
            expanded = list(matches)
        else:
            if not timm.is_model(architecture(name)):
                close = suggest(name)
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise UnknownModelError(f"unknown model {name!r} in --models: timm has no such architecture.{hint}")
            _check_pretrained_tag(name)
            expanded = [name]
        resolved.extend(m for m in expanded if m not in resolved)
    return resolved


def _check_pretrained_tag(name: str) -> None:
    """UnknownModelError for ``arch.tag`` where neither timm nor a weight package
    (``bench.weight_packages``) has the tag, listing the tags there are."""
    arch, _, tag = name.partition(".")
    if not tag:
        return
    from bench.weight_packages import PACKAGES, package_for

    if package_for(name) is not None or name in timm.list_pretrained(name):
        return
    tags = [p.tag for p in PACKAGES if p.architecture == arch and not p.timm_tag]  # a weight package's own first
    tags += [t.partition(".")[2] for t in timm.list_pretrained(f"{arch}.*")]
    listed = ", ".join(tags[:12]) + (f", ... ({len(tags)} in all)" if len(tags) > 12 else "")
    raise UnknownModelError(
        f"unknown pretrained tag {tag!r} of {arch!r} in --models"
        + (f": its tags are {listed}" if tags else f": {arch} has no pretrained tags; pass it as {arch!r}")
    )
