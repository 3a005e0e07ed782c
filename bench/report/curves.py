"""Per-epoch learning curves of a run, read from its own Lightning CSV log (``logs/metrics.csv``).

Torch-free (pandas). The training writes one row per epoch with ``train_loss_epoch`` (the mean of
the epoch's batch losses) and, with ``--eval-every N``, one after every N-th epoch with ``val_mAP``
(the raw model) and ``val_ema_mAP`` (its EMA, where the protocol keeps one). Committed runs have no
logs: their curves are absent, and the report says so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.store import LOG_DIR, METRICS_LOG

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearningCurve:
    """One run's curves; epochs are counted from 1 (the value after that many epochs of training)."""

    name: str
    loss_epochs: tuple[int, ...]
    train_loss: tuple[float, ...]
    eval_epochs: tuple[int, ...]
    eval_map: tuple[float, ...]
    ema_eval_map: tuple[float, ...]
    """The EMA's mAP at :attr:`eval_epochs`; empty where the run kept no EMA."""

    @property
    def has_eval(self) -> bool:
        return bool(self.eval_epochs)


def _per_epoch(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column's finite values by epoch (1-based), the last one logged for an epoch (a resumed run
    logs it again)."""
    if column not in frame or "epoch" not in frame:
        return pd.Series(dtype=float)
    rows = frame[["epoch", column]].dropna()
    rows = rows[rows[column].map(lambda v: math.isfinite(float(v)))]
    series = rows.groupby("epoch")[column].last().astype(float)
    series.index = series.index.astype(int) + 1
    return series.sort_index()


def read_learning_curve(run_dir: str | Path, name: str) -> LearningCurve | None:
    """The curves in ``run_dir/logs/metrics.csv``; ``None`` where there is no log or it has no
    per-epoch value (a log that cannot be read is skipped with a warning naming it)."""
    path = Path(run_dir) / LOG_DIR / METRICS_LOG
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:  # pandas' parser errors are ValueErrors
        log.warning("report: no learning curve from %s: %s", path, err)
        return None
    loss = _per_epoch(frame, "train_loss_epoch")
    raw = _per_epoch(frame, "val_mAP")
    ema = _per_epoch(frame, "val_ema_mAP").reindex(raw.index)
    if loss.empty and raw.empty:
        return None
    return LearningCurve(
        name=name,
        loss_epochs=tuple(int(e) for e in loss.index),
        train_loss=tuple(float(v) for v in loss),
        eval_epochs=tuple(int(e) for e in raw.index),
        eval_map=tuple(float(v) for v in raw),
        ema_eval_map=() if ema.isna().all() else tuple(float(v) for v in ema),
    )
