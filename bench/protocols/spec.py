"""What a protocol module registers: :class:`ProtocolSpec`, the questions the command line, the
runner and the report ask a protocol, each answered "nothing extra" by default (torch-free).

A fine-tuning protocol is a recipe (:mod:`bench.protocols.finetune`); a frozen-feature protocol
(:class:`FrozenSpec`) also scores cached features (:meth:`FrozenSpec.score`), names the
protocol-specific flags it takes and states its record's ``config``. The report asks every spec
for its summary statistics, leaderboard columns, table notes and report sections, so no report
module branches on a protocol's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pragma: no cover - types only
    import numpy as np

    from bench.protocol import FrozenProtocol
    from bench.report.summary import Summary
    from bench.store import RunRecord

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

    def csv_columns(self, summaries: Sequence[Summary]) -> list[str]:
        """Columns ``leaderboard.csv`` adds after its own for these summaries."""
        return []

    def csv_values(self, summary: Summary) -> dict[str, Any]:
        """One summary's values of :meth:`csv_columns` (missing ones are left empty)."""
        return {}

    def table_columns(self, summaries: Sequence[Summary]) -> list[str]:
        """Columns ``leaderboard.md``'s table of this protocol adds after "mAP over seeds"."""
        return []

    def table_cells(self, summary: Summary, columns: Sequence[str]) -> list[str]:
        """One summary's cells of ``columns`` (those of :meth:`table_columns`)."""
        return []

    def table_note(self, summaries: Sequence[Summary]) -> list[str]:
        """Paragraphs printed above this protocol's table."""
        return []

    def report_section(
        self, out_dir: Path, summaries: Sequence[Summary], names: Sequence[str], fig_dir: Path
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


PROTOCOL_FLAGS: Mapping[str, str] = {
    "probe": "--probe",
    "probe_costs": "--probe-costs",
    "lowshot_k": "--lowshot-k",
    "n_jobs": "--n-jobs",
}
"""The protocol-specific settings of the frozen protocols (argument name -> flag): each spec says
which it takes (:attr:`FrozenSpec.flags`); the others are an error for it."""


class FrozenSpec(ProtocolSpec):
    """A frozen-feature protocol: the backbone's cached pooled features, scored by :meth:`score`."""

    kind: ClassVar[str] = FROZEN
    flags: ClassVar[frozenset[str]] = frozenset()
    """Which of :data:`PROTOCOL_FLAGS` this protocol takes."""

    def default(self, synthetic: bool) -> FrozenProtocol:
        from bench.protocol import LINEAR_PROTOCOL, LINEAR_SYNTHETIC_PROTOCOL

        return (LINEAR_SYNTHETIC_PROTOCOL if synthetic else LINEAR_PROTOCOL).with_overrides(name=self.name)

    def overrides(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The protocol fields set by the given values of this spec's :attr:`flags` (``None``: not
        given). Raises ValueError for a combination it cannot run, naming the flag."""
        return {}

    def config_dict(self, protocol: FrozenProtocol, data: dict[str, Any]) -> dict[str, Any]:
        """The record's ``config`` from ``data`` (every field of ``protocol``, the resolved cost grid
        and probe recipe): what this protocol applies, nothing it ignores."""
        return data

    def describe(self, protocol: FrozenProtocol) -> str:
        """The console's words for how this protocol scores the features."""
        raise NotImplementedError

    def score(self, features: FeatureSplits, protocol: FrozenProtocol, n_jobs: int | None) -> Scored:
        """Score the eval split from the cached features (``n_jobs`` processes where it fits in parallel)."""
        raise NotImplementedError
