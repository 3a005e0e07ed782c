"""Speed measurements (``python benchmark.py speed``): how fast a protocol's steps run end to end
against the model alone, for fine-tuning (:mod:`bench.speed.training`), frozen feature extraction
(:mod:`bench.speed.extraction`) and the data pipeline alone (:mod:`bench.speed.data`); on the CPU
the model-only steps are paired with the end-to-end ones (:mod:`bench.speed.paired`). A split with
fewer batches than a measurement times is cycled (:mod:`bench.speed.cycled`).

None of it runs in a benchmark run: it measures, it does not rank.
"""
