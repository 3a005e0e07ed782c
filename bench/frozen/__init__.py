"""The frozen-feature protocols (``linear``, ``lowshot``): a frozen backbone's pooled features,
extracted once per image and cached (:mod:`bench.frozen.runner`, compiled where it pays,
:mod:`bench.frozen.compiled`), and linear probes fitted on them (:mod:`bench.frozen.probe`,
:mod:`bench.frozen.lowshot`, both torch-free).
"""
