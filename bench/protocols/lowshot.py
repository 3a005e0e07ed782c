"""``lowshot``: for each k, seeded samples of k positives and 19·k negatives per class from the
training split, a probe with one fixed C fitted on each, scored on the whole eval split (VISSL's
VOC07 low-shot benchmark; the sampling and fits are :mod:`bench.frozen.lowshot`'s). Its leaderboard
adds a column per k, and its report a figure of mAP against k. Torch-free."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.frozen.recipes import LOWSHOT_K_VALUES
from bench.protocols.linear import N_JOBS_OPTION, PROBE_OPTION, ProbeProtocol
from bench.protocols.spec import FeatureSplits, FrozenSpec, Option, Scored, SummaryView, positive_float

if TYPE_CHECKING:  # pragma: no cover - types only
    from bench.store import RunRecord

LOWSHOT_STATS = "lowshot"
"""The key of :meth:`LowShotSpec.summary_stats`' k -> (mean, std) in ``Summary.protocol_stats``."""


def lowshot_stats(records: Sequence[RunRecord], metric: str) -> dict[int, tuple[float, float]]:
    """k -> (mean, population std) of ``metric`` over every (record, sample) of the low-shot runs in
    ``records``' ``lowshot`` sections; only k values where every value is defined. Empty for
    records without such a section."""
    values: dict[int, list[float | None]] = {}
    for record in records:
        for run in (record.extra.get("lowshot") or {}).get("runs") or []:
            value = run.get(metric)
            values.setdefault(int(run["k"]), []).append(None if value is None else float(value))
    return {
        k: (float(np.mean(v)), float(np.std(v)))
        for k, v in sorted(values.items())
        if v and all(x is not None and math.isfinite(x) for x in v)
    }


def _ks(summaries: Sequence[SummaryView]) -> list[int]:
    """Every k any of ``summaries`` has statistics for, ascending."""
    return sorted({k for s in summaries for k in s.protocol_stats.get(LOWSHOT_STATS, {})})


@dataclass(frozen=True)
class LowShotProtocol(ProbeProtocol):
    """``lowshot``'s settings: for each k of ``k_values`` and each of ``samples`` seeded samples, k
    positives and ``negatives_per_positive``·k negatives per class from the training split, the probe
    fitted on them with the fixed C ``fixed_cost``, scored on the whole eval split (VISSL's VOC07
    low-shot benchmark)."""

    name: str = "lowshot"
    k_values: tuple[int, ...] = LOWSHOT_K_VALUES
    samples: int = 5
    negatives_per_positive: int = 19

    def __post_init__(self) -> None:
        super().__post_init__()
        ks = tuple(sorted({int(k) for k in self.k_values}))
        if not ks or ks[0] < 1:
            raise ValueError(f"low-shot k values must be positive integers, got {list(self.k_values)}")
        object.__setattr__(self, "k_values", ks)
        for field_name in ("samples", "negatives_per_positive"):
            if getattr(self, field_name) < 1:
                raise ValueError(f"{field_name} must be at least 1, got {getattr(self, field_name)}")

    def to_dict(self) -> dict[str, Any]:
        """Every field (``k_values`` as a list) and the probe recipe."""
        return {**super().to_dict(), "k_values": list(self.k_values)}


class LowShotSpec(FrozenSpec):
    name = "lowshot"
    help = "linear probes on k-shot samples of the same cached features, one fixed C (VISSL's VOC07 low-shot)"
    settings = LowShotProtocol
    options = (
        PROBE_OPTION,
        Option("probe_costs", type=positive_float, nargs="+", metavar="C",
               help=f"the one fixed C of every fit (default: {LowShotProtocol.fixed_cost:g})"),
        Option("lowshot_k", type=int, nargs="+", metavar="K",
               help=f"the k values, positives per class in a sample (default: {list(LOWSHOT_K_VALUES)}, VISSL's; a "
                    "k some class cannot serve is skipped and the record says why)"),
        N_JOBS_OPTION,
    )

    def overrides(self, values: Mapping[str, Any]) -> dict[str, Any]:
        costs, ks = values.get("probe_costs"), values.get("lowshot_k")
        if costs is not None and len(costs) != 1:
            raise ValueError(
                "--probe-costs: --protocol lowshot fits every sample with one fixed C (no C is chosen on the eval "
                f"split, and k = 1 is too few for cross-validation); give one value, not {len(costs)}"
            )
        return {"probe": values.get("probe"), "fixed_cost": None if costs is None else costs[0],
                "k_values": None if ks is None else tuple(ks)}

    def describe(self, protocol: Any) -> str:
        return (f"{protocol.probe} probe, C {protocol.fixed_cost:g}, k {list(protocol.k_values)} x "
                f"{protocol.samples} samples")

    def score(self, features: FeatureSplits, protocol: Any, n_jobs: int | None) -> Scored:
        from bench.frozen.lowshot import run_lowshot
        from bench.frozen.probe import SCORE_MAP

        recipe = protocol.recipe
        result = run_lowshot(
            features.train_features, features.train_labels, features.eval_features, features.eval_labels,
            recipe=recipe, k_values=protocol.k_values, samples=protocol.samples,
            negatives_per_positive=protocol.negatives_per_positive, cost=protocol.fixed_cost, seed=protocol.seed,
            n_jobs=n_jobs,
        )
        probe = {
            "name": recipe.name, "recipe": recipe.to_dict(), "source": recipe.source,
            "C": protocol.fixed_cost, "score_map": SCORE_MAP,
            "train_targets": "the sample's entries only: 1 positive, 0 negative (VISSL svm_low_shot_trainer)",
        }
        return Scored(result.scores, result.metrics, {"probe": probe, "lowshot": result.section()})

    # -- report ----------------------------------------------------------------------------------

    def summary_stats(self, records: Sequence[RunRecord], metric: str) -> dict[Any, Any]:
        """``{"lowshot": k -> (mean, population std)}`` of the ranked mAP over every (seed, sample)
        at k (VISSL reports the population std)."""
        return {LOWSHOT_STATS: lowshot_stats(records, metric)}

    def csv_columns(self, summaries: Sequence[SummaryView]) -> list[str]:
        """``lowshot_k<k>_mean``, ``lowshot_k<k>_std`` for every k any summary has, k ascending."""
        return [f"lowshot_k{k}_{stat}" for k in _ks(summaries) for stat in ("mean", "std")]

    def csv_values(self, summary: SummaryView) -> dict[str, Any]:
        return {f"lowshot_k{k}_{stat}": value for k, (mean, std) in summary.protocol_stats[LOWSHOT_STATS].items()
                for stat, value in (("mean", mean), ("std", std))}

    def table_columns(self, summaries: Sequence[SummaryView]) -> list[str]:
        """``k=<k>``: the low-shot mAP at k, mean ± std over the samples."""
        return [f"k={k}" for k in _ks(summaries)]

    def table_cells(self, summary: SummaryView, columns: Sequence[str]) -> list[str]:
        stats = summary.protocol_stats[LOWSHOT_STATS]
        cells = []
        for column in columns:
            value = stats.get(int(column.removeprefix("k=")))
            cells.append("–" if value is None else f"{value[0]:.3f} ± {value[1]:.3f}")
        return cells

    def table_note(self, summaries: Sequence[SummaryView]) -> list[str]:
        if not _ks(summaries):
            return []
        return [
            "*k=K*: low-shot mAP with K positives and 19·K negatives per class, mean ± std over the samples "
            "(and seeds); the ranked mAP is the run whose predictions the record keeps (sample 1 at the "
            "largest k)."
        ]

    def report_section(
        self, out_dir: Path, summaries: Sequence[SummaryView], names: Sequence[str], fig_dir: Path
    ) -> list[str]:
        """mAP against k (log scale), one line per model with statistics."""
        from bench.report.plots import LowShotLine, lowshot_figure, save_figure

        lines_of = []
        for s, name in zip(summaries, names, strict=True):
            stats = s.protocol_stats[LOWSHOT_STATS]
            if stats:
                ks = sorted(stats)
                lines_of.append(LowShotLine(name, ks, [stats[k][0] for k in ks], [stats[k][1] for k in ks]))
        if not lines_of:
            return []
        label = summaries[0].definition.label
        save_figure(lowshot_figure(lines_of, label), out_dir / fig_dir / "lowshot_map_vs_k.png")
        return [
            "## Low-shot mAP against k",
            "",
            f"{label} with k positives and 19·k negatives per class (log scale), one line per model: the mean over "
            "the samples (and seeds), the band ± one standard deviation.",
            "",
            f"![Low-shot mAP against k]({(fig_dir / 'lowshot_map_vs_k.png').as_posix()})",
            "",
        ]


SPEC = LowShotSpec()
