"""The frozen-feature machinery the frozen protocols (``bench.protocols``) run on: a frozen
backbone's pooled features, extracted once per image and cached (:mod:`bench.frozen.runner`,
compiled where it pays, :mod:`bench.frozen.compiled`), the linear probes and their recipes
(:mod:`bench.frozen.probe`, :mod:`bench.frozen.recipes`) and the low-shot samples
(:mod:`bench.frozen.lowshot`), the last three torch-free.
"""
