"""Time per model under two fine-tuning protocols, measured in one sitting: whole runs, interleaved.

    python scripts/protocol_time.py [--models M ...] [--protocols course modern] [--rounds R]
                                    [--out DIR] [-- FLAGS FOR benchmark.py]

Runs ``python benchmark.py --protocol P --models M --no-baseline --no-report`` once per protocol,
model and round, each run in its own folder under ``--out`` with its log beside it. The order of the
two protocols alternates from one (model, round) to the next (A B, then B A, ...), so a machine that
gets faster or slower during the sitting weighs on both protocols alike: on a shared 2-core VM the
same run's time swings by 10-40 % over minutes, so times from different sittings are not comparable.

Reads each record's ``wall_time_s.total`` (set-up, training and evaluation, as the leaderboard
reports it) and steady-state training img/s, and prints a markdown table: every pair of runs with the
ratio of their times, then the median ratio per model. Exit status 1 if a run failed (its log named).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.store import RunRecord, read_runs

ROOT = Path(__file__).resolve().parents[1]


def run_once(model: str, protocol: str, out: Path, extra: list[str]) -> RunRecord:
    """Run one model under one protocol into ``out`` (log: ``out.log``); its record."""
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".log")
    command = [sys.executable, str(ROOT / "benchmark.py"), "--protocol", protocol, "--models", model,
               "--no-baseline", "--no-report", "--out", str(out), *extra]
    with open(log, "w", encoding="utf-8") as f:
        done = subprocess.run(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, check=False)
    runs = read_runs(out)
    if done.returncode != 0 or len(runs) != 1:
        raise RuntimeError(f"{' '.join(command)} exited with status {done.returncode} and wrote "
                           f"{len(runs)} record(s): see {log}")
    record = runs[0].record
    if not record.ok:
        raise RuntimeError(f"{runs[0].dir}: status {record.status!r}, error {record.error!r}: see {log}")
    return record


def _total_s(record: RunRecord) -> float:
    """The run's time as the leaderboard reports it: set-up, training and evaluation."""
    return float(record.wall_time_s["total"])


def run_order(protocols: tuple[str, str], round_index: int, model_index: int) -> tuple[str, str]:
    """The order of a (model, round)'s two runs: the protocols as given, reversed for every other one."""
    return protocols if (round_index + model_index) % 2 == 0 else protocols[::-1]


def _train_rate(record: RunRecord) -> str:
    value = record.throughput_value("train_images_per_s")
    return "–" if value is None else f"{value:.1f}"


def measure(models: list[str], protocols: tuple[str, str], rounds: int, out: Path, extra: list[str]) -> str:
    """Run the sitting and return its markdown tables (per pair of runs, then per model)."""
    first, second = protocols
    rows = [f"| model | round | order | {first} s | {second} s | {second}/{first} "
            f"| train img/s {first} | train img/s {second} |", "|---|---|---|---|---|---|---|---|"]
    ratios: dict[str, list[float]] = {}
    for round_index in range(rounds):
        for model_index, model in enumerate(models):
            order = run_order(protocols, round_index, model_index)
            records = {p: run_once(model, p, out / f"{model}-{p}-r{round_index}", extra) for p in order}
            ratio = _total_s(records[second]) / _total_s(records[first])
            ratios.setdefault(model, []).append(ratio)
            rows.append(f"| {model} | {round_index + 1} | {' → '.join(order)} | {_total_s(records[first]):.1f} "
                        f"| {_total_s(records[second]):.1f} | {ratio:.3f} | {_train_rate(records[first])} "
                        f"| {_train_rate(records[second])} |")
            print(rows[-1], file=sys.stderr, flush=True)  # progress: a sitting takes minutes per run
    summary = [f"| model | pairs | median {second}/{first} | min–max |", "|---|---|---|---|"]
    for model, values in ratios.items():
        summary.append(f"| {model} | {len(values)} | {statistics.median(values):.3f} "
                       f"| {min(values):.3f}–{max(values):.3f} |")
    return "\n".join(rows) + "\n\n" + "\n".join(summary) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        extra, argv = argv[argv.index("--") + 1:], argv[: argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18"], metavar="NAME")
    parser.add_argument("--protocols", nargs=2, default=["course", "modern"], metavar=("A", "B"),
                        help="the two protocols; the table's ratio is B's time over A's (default: course modern)")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs per model (default: 2)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the runs and their logs go (default: a new folder under the system's temp)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.protocols[0] == args.protocols[1]:
        parser.error(f"--protocols needs two different protocols, got {args.protocols[0]} twice")
    out = args.out or Path(tempfile.mkdtemp(prefix="protocol-time-"))
    print(f"runs and logs: {out}", file=sys.stderr)
    try:
        print(measure(args.models, tuple(args.protocols), args.rounds, out, extra), end="")
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
