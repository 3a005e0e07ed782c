"""The benchmark: backbone registry, crop-max classifier, protocol, runner, results and leaderboard.

Builds on the ``voc`` package; ``benchmark.py`` is its command line, :func:`run` and
:func:`leaderboard` (``bench.api``) its Python entry points.
"""

from bench.api import leaderboard, run

__all__ = ["leaderboard", "run"]
