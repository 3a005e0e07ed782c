#!/bin/bash
# The default command's time in a fresh clone, in fp32 on 2 compute threads with oneDNN and ATen held
# to AVX2 (the closest this CPU comes to one without AVX-512), report included; then, in the same
# clone, the report alone and the course protocol's former synthetic size (6 epochs) for the ratio.
# Usage: bash first_run.sh REPO
set -e
export OMP_NUM_THREADS=2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
rm -rf /tmp/first-run && git clone -q "$1" /tmp/first-run && cd /tmp/first-run
time python benchmark.py --models resnet50 --precision 32-true
time python benchmark.py report
time python benchmark.py --models resnet50 --precision 32-true --epochs 6 --out results-6ep
