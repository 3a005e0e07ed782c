"""A backbone's training step, model alone, in each precision and memory format, as one table.

    python scripts/train_step_formats.py [--models M ...] [--batch-size B] [--size S] [--steps N]
                                         [--precisions 32-true bf16-mixed] [--threads T]

For each model, precision (``32-true``, ``bf16-mixed`` autocast) and memory format (channels-last,
contiguous), times ``--steps`` training steps (forward, class-wise BCE on 20 outputs, backward,
AdamW step) on one random batch of ``B x 3 x S x S`` after one untimed warm-up step, and prints the
median img/s with the slowest and fastest step. The cases of one model alternate step by step
(each timed step of a case is followed by one of the next), so a machine whose speed drifts during
the sitting weighs on all of them alike. No data loading: this is what the model costs, the bound an
end-to-end run approaches (``python benchmark.py speed`` measures that).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

PRECISIONS = ("32-true", "bf16-mixed")
FORMATS = ("channels_last", "contiguous")


def _cases(precisions: list[str]) -> list[tuple[str, str]]:
    return [(precision, fmt) for precision in precisions for fmt in FORMATS]


def measure(model_name: str, batch: int, size: int, steps: int, precisions: list[str]) -> dict[tuple[str, str], list]:
    """Seconds of each timed step, per (precision, memory format), the cases interleaved."""
    import timm
    import torch

    torch.manual_seed(0)
    images = torch.randn(batch, 3, size, size)
    targets = (torch.rand(batch, 20) < 0.2).float()
    setups = {}
    for precision, fmt in _cases(precisions):
        model = timm.create_model(model_name, num_classes=20).train()
        memory_format = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        model = model.to(memory_format=memory_format)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        setups[(precision, fmt)] = (model, optimizer, images.contiguous(memory_format=memory_format))

    def step(case: tuple[str, str]) -> float:
        model, optimizer, x = setups[case]
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=case[0] == "bf16-mixed"):
            logits = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - started

    for case in setups:  # warm-up: allocations, kernel selection
        step(case)
    seconds: dict[tuple[str, str], list] = {case: [] for case in setups}
    for _ in range(steps):
        for case in setups:
            seconds[case].append(step(case))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tf_efficientnet_lite0", "tf_efficientnet_lite2", "resnet50"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--threads", type=int, default=None, help="torch compute threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.size < 8 or args.steps < 1:
        parser.error("--batch-size and --steps must be positive and --size at least 8")
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"batch {args.batch_size} x 3 x {args.size} x {args.size}, {args.steps} timed steps per case, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print()
    print("| model | precision | memory format | img/s, median (slowest–fastest step) |")
    print("|---|---|---|---|")
    for model_name in args.models:
        for (precision, fmt), seconds in measure(model_name, args.batch_size, args.size, args.steps,
                                                 args.precisions).items():
            rates = [args.batch_size / s for s in seconds]
            print(f"| {model_name} | {precision} | {fmt} | {statistics.median(rates):.1f} "
                  f"({min(rates):.1f}–{max(rates):.1f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
