"""The benchmark: backbone registry, crop-max classifier, protocol, runner, results and leaderboard.

Builds on the ``voc`` package; ``benchmark.py`` is its command line.
"""
