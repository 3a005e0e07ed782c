"""The benchmark: backbone registry, crop-max classifier, protocol, runner, results and leaderboard.

Builds on the ``voc`` package; ``benchmark.py`` is its command line, :func:`run` and
:func:`leaderboard` (``bench.api``) its Python entry points, :func:`protocol_settings` a registered
protocol's settings to change and pass to :func:`run`.
"""

from bench.api import leaderboard, protocol_settings, run

__all__ = ["leaderboard", "protocol_settings", "run"]
