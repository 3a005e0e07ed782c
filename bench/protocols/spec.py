"""What a protocol module registers: :class:`ProtocolSpec`, the questions the command line, the
runner and the report ask a protocol, each answered "nothing extra" by default (torch-free).

A fine-tuning protocol is a recipe (:mod:`bench.protocols.finetune`); a frozen-feature protocol
(:class:`FrozenSpec`) also scores cached features (:meth:`FrozenSpec.score`), names its
settings dataclass and declares the flags of its own (:class:`Option`). The report asks every spec
for its summary statistics, leaderboard columns, table notes and report sections, so no report
module branches on a protocol's name.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from bench.protocols.settings import SYNTHETIC_SPLITS, FrozenProtocol

if TYPE_CHECKING:  # pragma: no cover - types only
    import numpy as np

    from bench.store import RunRecord
    from voc.metrics import APDefinition


class SummaryView(Protocol):
    """What a protocol's report hooks read of one leaderboard row (``bench.report.summary.Summary``
    is one): declared here so that the registry does not depend on the report that asks it."""

    protocol_stats: dict[Any, Any]
    """The protocol's own statistics, from its :meth:`ProtocolSpec.summary_stats`."""

    @property
    def definition(self) -> APDefinition:
        """The AP definition the row is ranked by."""
        ...


FINETUNE = "finetune"
FROZEN = "frozen"


class ProtocolSpec:
    """One registered protocol. Subclasses set :attr:`name`, :attr:`kind` and :attr:`help` and
    override the hooks they need; the base answers every report question with nothing extra."""

    name: ClassVar[str]
    kind: ClassVar[str]
    help: ClassVar[str]
    """One line: what the protocol does and where it comes from (``--protocol``'s help, docs)."""

    def default(self, synthetic: bool) -> Any:
        """The protocol's settings on real VOC, or on the synthetic set."""
        raise NotImplementedError

    # -- report hooks: all torch-free, called with this protocol's summaries only ------------------

    def summary_stats(self, records: Sequence[RunRecord], metric: str) -> dict[Any, Any]:
        """Statistics over one configuration's ``records`` (one per seed) that the protocol's columns,
        notes and figures show (``Summary.protocol_stats``); ``metric`` is the ranked mAP's key."""
        return {}

    def csv_columns(self, summaries: Sequence[SummaryView]) -> list[str]:
        """Columns ``leaderboard.csv`` adds after its own for these summaries."""
        return []

    def csv_values(self, summary: SummaryView) -> dict[str, Any]:
        """One summary's values of :meth:`csv_columns` (missing ones are left empty)."""
        return {}

    def table_columns(self, summaries: Sequence[SummaryView]) -> list[str]:
        """Columns ``leaderboard.md``'s table of this protocol adds after "mAP over seeds"."""
        return []

    def table_cells(self, summary: SummaryView, columns: Sequence[str]) -> list[str]:
        """One summary's cells of ``columns`` (those of :meth:`table_columns`)."""
        return []

    def table_note(self, summaries: Sequence[SummaryView]) -> list[str]:
        """Paragraphs printed above this protocol's table."""
        return []

    def report_section(
        self, out_dir: Path, summaries: Sequence[SummaryView], names: Sequence[str], fig_dir: Path
    ) -> list[str]:
        """``report.md`` lines (and the figures they show, drawn under ``out_dir / fig_dir``) of this
        protocol's own, after the tail-accuracy figure; ``names`` are the summaries' display names."""
        return []


@dataclass
class FeatureSplits:
    """The cached features a frozen protocol scores: the training split's and the eval split's
    ``[N, D]`` float32 features and ``[N, C]`` labels (1 present, 0 absent, -1 ignored)."""

    train_features: np.ndarray
    train_labels: np.ndarray
    eval_features: np.ndarray
    eval_labels: np.ndarray
    train_split: str = "train"


@dataclass
class Scored:
    """What a frozen protocol made of the features: eval scores in [0, 1] ``[N, C]``, the record's
    metrics (``voc.metrics.evaluate``) and the record sections it adds (``extra``)."""

    scores: np.ndarray
    metrics: dict[str, Any]
    sections: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What the run should warn about (the runner logs each with the model's name)."""


def positive_float(text: str) -> float:
    """An argparse type: a positive finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


@dataclass(frozen=True)
class Option:
    """A flag of a protocol's own, ``--<dest with dashes>``: the command line adds it once for every
    protocol that declares it (their help joined, each prefixed with the protocol's name) and refuses
    it for a protocol that does not. Declarations of one ``dest`` must agree on everything but help."""

    dest: str
    """The argument's name, and the settings field the value sets unless :attr:`field` says another."""
    help: str
    type: Callable[[str], Any] | None = None
    nargs: str | None = None
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    field: str | None = None
    """The settings field the value sets where it is not ``dest`` (``--crops`` sets ``crop_mode``)."""
    default: Any = None
    """The value when the flag is not given (``None``: the settings' own value applies)."""
    action: str | None = None
    """argparse's ``action`` for a flag that takes no value (``store_true``); ``None``: it takes one."""

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")

    @property
    def target(self) -> str:
        """The settings field the value sets."""
        return self.field or self.dest

    def argparse_kwargs(self) -> dict[str, Any]:
        """What ``add_argument`` takes besides the flag and the help."""
        kwargs: dict[str, Any] = {"default": self.default}
        for key in ("action", "type", "nargs", "choices", "metavar"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        return kwargs


class FrozenSpec(ProtocolSpec):
    """A frozen-feature protocol: the backbone's cached pooled features, scored by :meth:`score`.

    A subclass sets :attr:`settings` (its :class:`~bench.protocols.settings.FrozenProtocol` subclass,
    whose ``name`` default is the protocol's name) and :attr:`options` (its own flags); the defaults
    of :meth:`default` and :meth:`overrides` then need no code."""

    kind: ClassVar[str] = FROZEN
    settings: ClassVar[type[FrozenProtocol]]
    """The protocol's settings dataclass; its defaults are the real-VOC settings."""
    options: ClassVar[tuple[Option, ...]] = ()
    """The flags of this protocol's own; the others' are an error for it."""

    def default(self, synthetic: bool) -> FrozenProtocol:
        """The settings' defaults, with :data:`~bench.protocols.settings.SYNTHETIC_SPLITS` on the synthetic set."""
        return self.settings(**SYNTHETIC_SPLITS) if synthetic else self.settings()

    def overrides(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The settings fields set by the given values of this spec's :attr:`options` (``None``: not
        given); by default each option's value to the settings field it targets (``Option.target``),
        where the settings have that field.
        Raises ValueError for a combination it cannot run, naming the flag."""
        known = {f.name for f in fields(self.settings)}
        return {o.target: values.get(o.dest) for o in self.options if o.target in known}

    def describe(self, protocol: FrozenProtocol) -> str:
        """The console's words for how this protocol scores the features."""
        raise NotImplementedError

    def score(self, features: FeatureSplits, protocol: FrozenProtocol, n_jobs: int | None) -> Scored:
        """Score the eval split from the cached features (``n_jobs`` processes where it fits in parallel)."""
        raise NotImplementedError
