"""One summary per compared configuration: its runs over seeds, their mean and spread, bootstrap
intervals, and a paired bootstrap against the leader.

Runs are the same configuration when everything but the seed matches: model, weights, protocol
and data. The leaderboard and the report both rank these summaries.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.protocols import report_spec
from bench.store import BASELINE_NAME, DEFAULT_PROTOCOL, LABELS_FILE, PREDICTIONS_FILE, Run, RunRecord, load_eval
from voc.bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Interval,
    bootstrap_accuracy,
    bootstrap_map,
    percentile_interval,
    prob_not_better,
    resample_counts,
)
from voc.constants import VOC_CLASSES
from voc.errors import VOCDataError
from voc.metrics import AP_DEFINITIONS, APDefinition

log = logging.getLogger(__name__)

DEFAULT_AP = "sklearn"
"""The AP definition tables rank by unless ``--ap`` names another (a key of ``voc.metrics.AP_DEFINITIONS``)."""
CONFIDENT = 0.95
"""A model counts as worse than the leader when its P(mAP <= leader) is at least this."""


@dataclass(frozen=True)
class BootstrapSettings:
    """How the intervals are computed: resamples, their seed, the interval's level."""

    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    level: float = DEFAULT_LEVEL


DEFAULT_BOOTSTRAP = BootstrapSettings()
"""The leaderboard's and the report's intervals unless told otherwise."""


@dataclass
class Summary:
    """The successful runs of one configuration (one per seed) and what they add up to."""

    model: str
    runs: list[Run]
    """Sorted by seed."""
    ap: str = DEFAULT_AP
    """The AP definition this summary is ranked, compared and shown by (``voc.metrics.AP_DEFINITIONS``)."""
    mean: dict[str, float | None] = field(default_factory=dict)
    """accuracy, mAP, map_voc07, map_voc12, tail_accuracy, train/eval img/s: means over seeds."""
    throughput_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    """``train_images_per_s`` / ``eval_images_per_s`` -> (slowest, fastest) steady-state window over
    every seed's run; only where every run recorded its windows' range (older records did not)."""
    seed_std: dict[str, float | None] = field(default_factory=dict)
    """accuracy, mAP, map_voc07, map_voc12: sample standard deviation over seeds (``None`` with one seed)."""
    per_class_ap: dict[str, float | None] = field(default_factory=dict)
    """Each class's AP under :attr:`ap`, the mean over seeds."""
    tail_curve: tuple[np.ndarray, np.ndarray] | None = None
    """(thresholds, mean tail accuracy over seeds), if every run has the same thresholds."""
    ci: dict[str, Interval] = field(default_factory=dict)
    """Bootstrap intervals of accuracy and of the mAP under :attr:`ap` (of the mean over seeds),
    keyed by their metric names."""
    p_not_better: float | None = None
    """Paired bootstrap: P(this configuration's mAP under :attr:`ap` <= the leader's); ``None`` for the leader."""
    p_not_above_prior: float | None = None
    """Paired bootstrap: P(this configuration's mAP under :attr:`ap` <= the prior baseline's of its protocol);
    ``None`` for the baseline itself and where the protocol has no baseline scored on the same images."""
    eval_ids: tuple[str, ...] | None = None
    map_replicates: np.ndarray | None = None
    note: str | None = None
    """Why an interval or comparison is missing, if one is."""
    protocol_stats: dict[Any, Any] = field(default_factory=dict)
    """What the protocol's own columns, notes and figures show, from its module's ``summary_stats``
    (``bench.protocols``; e.g. ``lowshot``'s mAP per k); empty for most protocols."""

    @property
    def record(self) -> RunRecord:
        """The first seed's record (weights, params, config, data are the same for all)."""
        return self.runs[0].record

    @property
    def protocol(self) -> str:
        """The protocol these runs followed: summaries of different protocols are never ranked together."""
        return self.record.protocol

    @property
    def seeds(self) -> list[int]:
        return [run.record.seed for run in self.runs]

    @property
    def definition(self) -> APDefinition:
        """The AP definition of :attr:`ap`."""
        return AP_DEFINITIONS[self.ap]

    @property
    def map(self) -> float | None:
        """The mean over seeds of the mAP under :attr:`ap`: what the summary is ranked by."""
        return self.mean.get(self.definition.metric)

    @property
    def map_ci(self) -> Interval | None:
        """The bootstrap interval of :attr:`map`."""
        return self.ci.get(self.definition.metric)

    @property
    def map_seed_std(self) -> float | None:
        """The standard deviation over seeds of the mAP under :attr:`ap`."""
        return self.seed_std.get(self.definition.metric)


def config_key(record: RunRecord) -> str:
    """What makes two records the same configuration: everything but the seed (and the
    environment, timings and results)."""
    config = {k: v for k, v in record.config.items() if k != "seed"}
    dataset = {k: v for k, v in record.dataset.items() if k not in ("n_train_images", "n_eval_images")}
    return json.dumps([record.model, record.weights, config, dataset], sort_keys=True, default=str)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _mean(values: Sequence[float | None]) -> float | None:
    finite = _finite(values)
    return float(np.mean(finite)) if finite else None


def _std(values: Sequence[float | None]) -> float | None:
    finite = _finite(values)
    return float(np.std(finite, ddof=1)) if len(finite) >= 2 else None


def group_runs(runs: Sequence[Run], ap: str = DEFAULT_AP) -> list[Summary]:
    """Successful runs grouped by configuration, one run per seed (a second run of the same seed,
    e.g. from a concurrent sweep, is left out with a log line naming both folders); per-class APs
    under ``ap``."""
    check_ap(ap)
    groups: dict[str, dict[int, Run]] = {}
    for run in runs:
        if not run.ok:
            continue
        seed = run.record.seed
        by_seed = groups.setdefault(config_key(run.record), {})
        if seed in by_seed:
            kept = by_seed[seed].dir
            log.info("%s repeats seed %s of %s: the leaderboard uses %s", run.dir, seed, kept, kept)
            continue
        by_seed[seed] = run
    summaries = []
    for by_seed in groups.values():
        ordered = [by_seed[s] for s in sorted(by_seed)]
        summaries.append(_fill_means_and_spreads(Summary(model=ordered[0].record.model, runs=ordered, ap=ap)))
    return summaries


FEATURE_RATE = "feature_images_per_s"
"""A frozen-feature run's extraction rate in ``Summary.mean``: the mean of its two splits' end-to-end
rates (``throughput.feature_train_images_per_s``/``feature_eval_images_per_s``; a split read from the
cache has none), the mean over seeds."""


def _fill_means_and_spreads(summary: Summary) -> Summary:
    """Set ``summary``'s means over seeds (metrics, throughput, per-class AP, tail curve), the
    seed standard deviations of accuracy and mAP and the throughput ranges from its runs' records;
    returns it."""
    records = [run.record for run in summary.runs]
    for key in ("accuracy", "mAP", "map_voc07", "map_voc12", "tail_accuracy"):
        summary.mean[key] = _mean([r.metric(key) for r in records])
    for key in ("accuracy", "mAP", "map_voc07", "map_voc12"):
        summary.seed_std[key] = _std([r.metric(key) for r in records])
    for key in ("train_images_per_s", "eval_images_per_s"):
        summary.mean[key] = _mean([r.throughput_value(key) for r in records])
        lows, highs = ([r.throughput_value(f"{key}_{end}") for r in records] for end in ("min", "max"))
        if records and all(v is not None for v in (*lows, *highs)):
            summary.throughput_range[key] = (min(lows), max(highs))  # type: ignore[type-var]
    summary.mean[FEATURE_RATE] = _mean([_mean([r.throughput_value(f"feature_{split}_images_per_s")
                                               for split in ("train", "eval")]) for r in records])
    per_class = [r.per_class_values(summary.definition.per_class) for r in records]
    for name in VOC_CLASSES:
        summary.per_class_ap[name] = _mean([values.get(name) for values in per_class])
    summary.tail_curve = mean_tail_curve([r.tail_curve for r in records])
    summary.protocol_stats = report_spec(summary.protocol).summary_stats(records, summary.definition.metric)
    return summary


def mean_tail_curve(curves: Sequence[dict[str, Any] | None]) -> tuple[np.ndarray, np.ndarray] | None:
    """The mean of several runs' tail-accuracy curves (``{"thresholds": [...], "values": [...]}``).

    Each run's thresholds end at its own highest score, so the curves are interpolated (linearly,
    over their defined points) onto the grid of the run whose grid ends first, which every curve
    covers. ``None`` if any run has no defined point.
    """
    parsed = []
    for curve in curves:
        if not curve or not curve.get("thresholds"):
            return None
        t = np.asarray(curve["thresholds"], dtype=np.float64)
        v = np.array([np.nan if x is None else x for x in curve["values"]], dtype=np.float64)
        if np.isnan(v).all():
            return None
        parsed.append((t, v))
    grid = min((t for t, _ in parsed), key=lambda t: t[-1])
    if len(parsed) == 1:
        return parsed[0]
    resampled = [np.interp(grid, t[~np.isnan(v)], v[~np.isnan(v)]) for t, v in parsed]
    return grid, np.mean(resampled, axis=0)


def display_names(summaries: Sequence[Summary]) -> list[str]:
    """The model name, or ``model [folder]`` where one model appears in several configurations."""
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s.model] = counts.get(s.model, 0) + 1
    return [s.model if counts[s.model] == 1 else f"{s.model} [{s.runs[0].dir.name}]" for s in summaries]


def check_ap(ap: str) -> str:
    """``ap`` if it names an AP definition, else ValueError naming ``--ap`` and the valid names."""
    if ap not in AP_DEFINITIONS:
        raise ValueError(f"--ap: unknown AP definition {ap!r}; choose one of {list(AP_DEFINITIONS)}")
    return ap


def rank(summaries: Sequence[Summary]) -> list[Summary]:
    """Best mean mAP (under each summary's AP definition) first; ties (and missing mAP, last) by model name."""
    def key(s: Summary) -> tuple[float, str]:
        value = s.map
        return (-(value if value is not None else float("-inf")), s.model)

    return sorted(summaries, key=key)


@dataclass(frozen=True)
class Replicates:
    """One run's bootstrap replicates of mAP and accuracy, and the image ids they were drawn over."""

    ids: tuple[str, ...]
    map: np.ndarray
    accuracy: np.ndarray


_CACHE_SIZE = 512
_replicates_cache: dict[tuple[Any, ...], Replicates] = {}
"""Replicates by (predictions/labels file identity, settings): a sweep rebuilds the leaderboard after
every model, and without this each rebuild would resample every earlier run again."""
_resample_counts = functools.lru_cache(maxsize=4)(resample_counts)


def _file_identity(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def run_replicates(run: Run, settings: BootstrapSettings, ap: str = DEFAULT_AP) -> Replicates:
    """The run's mAP (under ``ap``) and accuracy on each of ``settings``' resamples of its eval
    images (cached while its files are unchanged). Raises VOCDataError when its predictions or
    labels are missing."""
    key = (_file_identity(run.dir / PREDICTIONS_FILE), _file_identity(run.dir / LABELS_FILE), settings, ap)
    cached = _replicates_cache.get(key) if key[0] is not None else None
    if cached is not None:
        return cached
    data = load_eval(run)
    counts = _resample_counts(len(data.ids), settings.n_resamples, settings.seed)
    replicates = Replicates(
        data.ids,
        bootstrap_map(data.scores, data.labels, counts, ap),
        bootstrap_accuracy(data.scores, data.labels, counts),
    )
    if key[0] is not None:
        if len(_replicates_cache) >= _CACHE_SIZE:
            _replicates_cache.pop(next(iter(_replicates_cache)))
        _replicates_cache[key] = replicates
    return replicates


def _bootstrap(summary: Summary, settings: BootstrapSettings) -> None:
    """Bootstrap intervals of the seed-mean accuracy and mAP: each seed's run is scored on the
    same resamples, and the replicate of the summary is the mean over seeds."""
    try:
        per_seed = [run_replicates(run, settings, summary.ap) for run in summary.runs]
    except VOCDataError as err:
        summary.note = f"no interval: {err}"
        log.warning("%s: %s", summary.model, summary.note)
        return
    ids = per_seed[0].ids
    if any(r.ids != ids for r in per_seed[1:]):
        summary.note = "no interval: its seeds were evaluated on different images"
        log.warning("%s: %s", summary.model, summary.note)
        return
    maps = np.mean([r.map for r in per_seed], axis=0)
    accs = np.mean([r.accuracy for r in per_seed], axis=0)
    summary.eval_ids, summary.map_replicates = ids, maps
    summary.ci = {
        summary.definition.metric: percentile_interval(maps, settings.level),
        "accuracy": percentile_interval(accs, settings.level),
    }


def protocols_of(summaries: Sequence[Summary]) -> list[str]:
    """The protocols of ``summaries`` in display order: the course protocol first, then by name."""
    names = {s.protocol for s in summaries}
    return sorted(names, key=lambda name: (name != DEFAULT_PROTOCOL, name))


def summarize(
    runs: Sequence[Run], settings: BootstrapSettings | None = DEFAULT_BOOTSTRAP, ap: str = DEFAULT_AP
) -> list[Summary]:
    """Ranked summaries of ``runs``, protocol by protocol (:func:`protocols_of`), by mAP under the AP
    definition ``ap``: rows of different protocols are never ranked against each other, and each
    protocol has its own leader. With
    ``settings``, each summary has bootstrap intervals and, for all but its protocol's leader, the
    paired probability of being no better than that leader (only where both were evaluated on the
    same images)."""
    grouped = group_runs(runs, ap)
    return [
        summary
        for protocol in protocols_of(grouped)
        for summary in _summarize_protocol([s for s in grouped if s.protocol == protocol], settings)
    ]


def _summarize_protocol(grouped: Sequence[Summary], settings: BootstrapSettings | None) -> list[Summary]:
    summaries = rank(grouped)
    if settings is None or not summaries:
        return summaries
    for summary in summaries:
        _bootstrap(summary, settings)
    leader = summaries[0]
    for summary in summaries[1:]:
        if leader.map_replicates is None or summary.map_replicates is None:
            continue
        if summary.eval_ids != leader.eval_ids:
            summary.note = f"not compared with {leader.model}: evaluated on different images"
            continue
        summary.p_not_better = prob_not_better(summary.map_replicates, leader.map_replicates)
    prior = next((s for s in summaries if s.model == BASELINE_NAME and s.map_replicates is not None), None)
    for summary in summaries:
        if prior is None or summary is prior or summary.map_replicates is None or summary.eval_ids != prior.eval_ids:
            continue
        summary.p_not_above_prior = prob_not_better(summary.map_replicates, prior.map_replicates)
    return summaries
