"""One sweep spread over processes: ``--shard K/N``, or a SLURM job array's task (torch-free).

The rule: the sweep's runs, in the order a whole sweep makes them (every model of the first seed in
the order ``--models`` resolves to, then every model of the next seed, ...), are dealt round-robin:
run ``i`` (counted from 0) goes to shard ``i mod N``. ``K`` counts from 0 to ``N - 1``, as
``SLURM_ARRAY_TASK_ID`` does under ``#SBATCH --array=0-(N-1)``. Only shard 0 runs the label-prior
baseline. Every shard writes into one shared results folder; the run-folder locks and the
leaderboard's lock (``bench.store.locked``) keep concurrent shards from losing a record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

SLURM_TASK_VARIABLES: tuple[str, ...] = (
    "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
)
"""The variables SLURM sets in every task of a job array (``sbatch --array``)."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``; ``Shard()`` is the whole sweep."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need N >= 1 and K in 0..N-1")

    def take(self, items: Sequence[T]) -> list[T]:
        """This shard's items: item ``i`` of ``items`` where ``i mod count == index``, in order."""
        return [item for i, item in enumerate(items) if i % self.count == self.index]

    @property
    def runs_baseline(self) -> bool:
        """Whether this shard runs the label-prior baseline: shard 0 only."""
        return self.index == 0

    @property
    def is_whole(self) -> bool:
        return self.count == 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard()


def parse_shard(text: str) -> Shard:
    """``"1/4"`` → ``Shard(1, 4)``. Raises ValueError naming the expected form."""
    k, sep, n = text.partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit():
        raise ValueError(f"expected K/N with whole numbers, e.g. 0/4 (shard 0 of 4), not {text!r}")
    index, count = int(k), int(n)
    if count < 1:
        raise ValueError(f"N is the number of shards, at least 1, not {count} (in {text!r})")
    if index >= count:
        raise ValueError(
            f"K counts from 0 to N-1 = {count - 1}, not {index} (in {text!r}; the first shard is 0/{count})"
        )
    return Shard(index, count)


def shard_from_slurm(environ: Mapping[str, str]) -> Shard | None:
    """The shard of this SLURM job-array task, or ``None`` outside a job array.

    ``K = (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP`` and
    ``N = SLURM_ARRAY_TASK_COUNT``, so ``--array=0-7``, ``--array=1-8`` and ``--array=0-14:2`` all
    give shards 0/8 ... 7/8 (a ``%`` throttle changes nothing). An array whose indices are not evenly
    spaced (``--array=1,4,9``) cannot be mapped: ValueError, telling to give ``--shard K/N``.
    """
    if "SLURM_ARRAY_TASK_ID" not in environ:
        return None
    values: dict[str, int] = {}
    for name in SLURM_TASK_VARIABLES:
        raw = environ.get(name)
        if raw is None:
            continue
        try:
            values[name] = int(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a whole number; give --shard K/N explicitly") from None
    if "SLURM_ARRAY_TASK_COUNT" not in values:
        raise ValueError("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (SLURM before 17.02?); "
                         "give --shard K/N explicitly, e.g. --shard $SLURM_ARRAY_TASK_ID/8")
    task, count = values["SLURM_ARRAY_TASK_ID"], values["SLURM_ARRAY_TASK_COUNT"]
    low, step = values.get("SLURM_ARRAY_TASK_MIN", 0), values.get("SLURM_ARRAY_TASK_STEP", 1)
    high = values.get("SLURM_ARRAY_TASK_MAX", low + step * (count - 1))
    offset = task - low
    if count < 1 or step < 1 or high - low != step * (count - 1) or offset < 0 or offset % step:
        raise ValueError(
            f"the job array's indices are not {count} evenly spaced values (task {task}, min {low}, max {high}, "
            f"step {step}), so this task's shard is unclear; give --shard K/N explicitly (K from 0 to N-1)"
        )
    return Shard(offset // step, count)
