"""Fine-tuning: build an experiment, run a sweep of backbones, measure its steady-state throughput.

Everything here imports torch and Lightning; the reporting side (``bench.report``) does not, and
training never imports reporting: a sweep hands each finished record to a callback. The frozen
protocols are :mod:`bench.frozen`, the speed measurements :mod:`bench.speed`.
"""
