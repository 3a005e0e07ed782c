"""Training side of the benchmark: build an experiment, run a sweep, the baseline, speed.

Everything here imports torch and Lightning; the reporting side (``bench.report``) does not, and
training never imports reporting: a sweep hands each finished record to a callback.
"""
