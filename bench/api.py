"""The Python entry point: what ``python benchmark.py`` does, callable from a notebook.

    import bench
    records = bench.run("lpft", ["tf_efficientnet_lite0"], data="path/to/VOC", out="results/mine",
                        pretrained="imagenet")
    frame = bench.leaderboard("results/mine")          # a pandas DataFrame, leaderboard.csv's rows

``run`` takes a protocol by name or as its settings (:func:`protocol_settings`: a
``bench.protocols.settings.Protocol`` for fine-tuning, a ``FrozenProtocol`` subclass for the
frozen-feature protocols; e.g. ``replace(bench.protocol_settings("lpft"), epochs=4)``) and data as
a path, ``auto``, ``synthetic`` or a ``bench.data.DataSource``; it is :func:`plan` then :func:`sweep`.
The command line turns its flags into these objects and calls the same two. Importing this module
imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from bench.data import DataSource
    from bench.protocols.settings import FrozenProtocol, Protocol
    from bench.shard import Shard
    from bench.store import RunRecord
    from bench.weights import Weights


def protocol_settings(name: str, synthetic: bool = False) -> Protocol | FrozenProtocol:
    """The registered protocol ``name``'s settings: its real-VOC values, or the synthetic set's
    (a frozen dataclass: change a setting with ``dataclasses.replace``). ValueError listing the valid
    names for an unknown one."""
    from bench.protocols import get_spec

    return get_spec(name).default(synthetic)


def resolve_protocol(protocol: str | Protocol | FrozenProtocol, data: DataSource) -> Protocol | FrozenProtocol:
    """``protocol`` as it is, or the registered protocol of that name in its variant for ``data``
    (the synthetic set's CPU-sized one where ``data`` is synthetic). ValueError for an unknown name,
    listing the valid ones."""
    if not isinstance(protocol, str):
        return protocol
    return protocol_settings(protocol, synthetic=data.is_synthetic)


def sweep_function(protocol: Protocol | FrozenProtocol) -> Callable[..., list[RunRecord]]:
    """The sweep that runs ``protocol``: the frozen runner's for a ``FrozenProtocol``, else the
    fine-tuning runner's (both take the same arguments, their options apart)."""
    from bench.protocols.settings import FrozenProtocol

    if isinstance(protocol, FrozenProtocol):
        from bench.frozen.runner import run_frozen_sweep

        return run_frozen_sweep
    from bench.train.runner import run_sweep

    return run_sweep


@dataclass(frozen=True)
class Plan:
    """What a sweep runs, resolved and checked before any work (:func:`plan`)."""

    protocol: Protocol | FrozenProtocol
    models: list[str]
    """timm names, wildcards expanded; a model a wildcard matched whose weights are missing is left out."""
    weights: dict[str, Weights]
    data: DataSource
    """The VOC tree, with the images ``skip_bad_images`` left out in ``data.skipped``."""
    sizes: dict[str, int]
    """Images per split after the protocol's filters."""


def plan(
    protocol: str | Protocol | FrozenProtocol,
    models: Sequence[str],
    data: str | Path | DataSource = "auto",
    *,
    pretrained: str = "auto",
    skip_bad_images: bool = False,
) -> Plan:
    """Resolve ``models`` (timm names or wildcards), every model's weights, the data and the protocol
    (by name: its variant for the data), and check the data up front. Raises
    ``bench.registry.UnknownModelError`` for an unknown model, ``bench.weights.WeightsUnavailableError``
    where weights are missing (each with the fix), ValueError for an unknown protocol or a label
    setting the data cannot serve, ``voc.errors.VOCDataError`` for a bad file (``skip_bad_images``
    leaves unreadable images out instead)."""
    from bench.data import DEFAULT_YEAR, DataSource, resolve_data
    from bench.registry import is_pattern, resolve_models
    from bench.train.checks import check_data
    from bench.weights import resolve_all_weights

    names = resolve_models(list(models))
    named = {n for n in models if not is_pattern(n)}
    weights = resolve_all_weights(names, pretrained, skippable=[m for m in names if m not in named])
    if not isinstance(data, DataSource):  # the year matters for a synthetic set only: as the command line's
        data = resolve_data(str(data), year=DEFAULT_YEAR if isinstance(protocol, str) else protocol.year)
    resolved = resolve_protocol(protocol, data)
    sizes, skipped = check_data(resolved, data, skip_bad_images=skip_bad_images)
    if skipped:
        data = replace(data, skipped=skipped)
    return Plan(resolved, [m for m in names if m in weights], weights, data, sizes)


def sweep(
    planned: Plan,
    out: str | Path,
    *,
    pretrained: str = "auto",
    options: Any = None,
    seeds: Sequence[int] | None = None,
    baseline: bool = True,
    resume: bool = False,
    shard: Shard | None = None,
    command: str | None = None,
    on_record: Callable[[RunRecord], None] | None = None,
) -> list[RunRecord]:
    """Run a :func:`plan` into ``out``: one record per model and seed (``seeds``: the protocol's seed
    where ``None``), the prior baseline first unless ``baseline`` is False, finished runs kept with
    ``resume``, this ``shard`` of the runs only; ``on_record`` is called after each record.
    ``options``: ``bench.train.experiment.TrainerOptions`` (fine-tuning) or
    ``bench.frozen.runner.FrozenOptions`` (frozen protocols), their defaults where ``None``;
    ``command`` is what each record says wrote it (the calling script's command line where ``None``)."""
    from bench.shard import WHOLE

    kwargs: dict[str, Any] = {"options": options} if options is not None else {}
    return sweep_function(planned.protocol)(
        planned.models, protocol=planned.protocol, data=planned.data, out_dir=Path(out), weights=planned.weights,
        pretrained=pretrained, baseline=baseline, resume=resume, seeds=seeds, shard=shard or WHOLE,
        command=command, on_record=on_record, **kwargs,
    )


def run(
    protocol: str | Protocol | FrozenProtocol,
    models: Sequence[str],
    data: str | Path | DataSource = "auto",
    out: str | Path = "results",
    *,
    pretrained: str = "auto",
    options: Any = None,
    seeds: Sequence[int] | None = None,
    baseline: bool = True,
    resume: bool = False,
    shard: Shard | None = None,
    skip_bad_images: bool = False,
    leaderboard_after_each: bool = True,
) -> list[RunRecord]:
    """Run ``protocol`` on every model of ``models`` (timm names; wildcards as ``--models`` takes
    them) into ``out`` and return the records: :func:`plan`, then :func:`sweep`;
    ``leaderboard.md``/``.csv`` are rebuilt after each record unless ``leaderboard_after_each`` is
    False. Raises what :func:`plan` raises, before any work."""
    from bench.report.leaderboard import write_leaderboard

    out = Path(out)
    planned = plan(protocol, models, data, pretrained=pretrained, skip_bad_images=skip_bad_images)
    return sweep(planned, out, pretrained=pretrained, options=options, seeds=seeds, baseline=baseline, resume=resume,
                 shard=shard, on_record=(lambda record: write_leaderboard(out)) if leaderboard_after_each else None)


def leaderboard(out: str | Path, ap: str = "sklearn", bootstrap: bool = True) -> pd.DataFrame:
    """The leaderboard of the results folder ``out`` as a DataFrame: ``leaderboard.csv``'s rows and
    columns (rank within protocol by the AP definition ``ap``: ``sklearn``, ``voc07`` or ``voc12``;
    the three mAPs, intervals and paired-bootstrap P's unless ``bootstrap`` is False, per-class AP),
    rebuilt from the records; nothing is written."""
    from bench.report.leaderboard import leaderboard_frame
    from bench.report.summary import DEFAULT_BOOTSTRAP, summarize
    from bench.store import read_runs

    return leaderboard_frame(summarize(read_runs(Path(out)), DEFAULT_BOOTSTRAP if bootstrap else None, ap))
