"""The protocol registry: every protocol is one module of this package, registered here, in
:data:`MODULES`, and nowhere else. The command line, the runners and the report ask a protocol's
:class:`~bench.protocols.spec.ProtocolSpec` what it needs (its default settings, flags, scoring,
columns, figures) instead of branching on its name. Torch-free.

Adding a protocol: a module defining ``SPEC`` (or ``SPECS``), its name in :data:`MODULES`, its tests
(docs/architecture.md). The module declares everything of the protocol's own: its settings
dataclass (over ``bench.protocols.settings``), its real-VOC and synthetic defaults, its flags
(``bench.protocols.spec.Option``), its scoring or recipe and its report hooks.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from bench.protocols.spec import FINETUNE, FROZEN, FrozenSpec, ProtocolSpec

MODULES: tuple[str, ...] = ("finetune", "linear", "lowshot", "knn")
"""The registered protocol modules, in display order (``--protocol``'s choices, the docs table): a
submodule of this package by its name, or any importable module by its dotted path."""

__all__ = [
    "FINETUNE", "FROZEN", "MODULES", "FrozenSpec", "ProtocolSpec", "frozen_spec", "get_spec", "names", "registry",
    "report_spec",
]


@cache
def registry() -> dict[str, ProtocolSpec]:
    """Every registered protocol by name, in :data:`MODULES` order (imported on first use)."""
    specs: dict[str, ProtocolSpec] = {}
    for module_name in MODULES:
        module = import_module(module_name if "." in module_name else f"{__name__}.{module_name}")
        for one in getattr(module, "SPECS", None) or (module.SPEC,):
            if one.name in specs:
                raise RuntimeError(f"protocol {one.name!r} registered twice (module {module.__name__})")
            specs[one.name] = one
    return specs


def names(kind: str | None = None) -> tuple[str, ...]:
    """The registered protocol names (of ``kind``: ``finetune`` or ``frozen``, where given)."""
    return tuple(name for name, one in registry().items() if kind is None or one.kind == kind)


def get_spec(name: str) -> ProtocolSpec:
    """The registered protocol ``name``; ValueError listing the valid names otherwise."""
    try:
        return registry()[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; valid values are {list(names())}") from None


def frozen_spec(name: str) -> FrozenSpec:
    """The registered frozen-feature protocol ``name``; ValueError listing the valid names otherwise."""
    one = registry().get(name)
    if not isinstance(one, FrozenSpec):
        raise ValueError(f"unknown frozen protocol {name!r}; valid values are {list(names(FROZEN))}")
    return one


def report_spec(name: str) -> ProtocolSpec:
    """The spec the report asks about records of protocol ``name``: the registered one, or a spec
    with no extra columns or figures for a name this version does not know."""
    return registry().get(name) or ProtocolSpec()
