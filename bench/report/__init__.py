"""The reporting side: rank stored runs and write the leaderboard and the report. Torch-free.

- :mod:`bench.report.summary`: runs grouped per configuration (over seeds), means, spreads,
  bootstrap intervals, the paired comparison with the leader.
- :mod:`bench.report.leaderboard`: ``leaderboard.md`` / ``leaderboard.csv``
  (:func:`~bench.report.leaderboard.write_leaderboard`).
- :mod:`bench.report.markdown`: ``report.md`` and its figures
  (:func:`~bench.report.markdown.write_report`, :class:`~bench.report.markdown.ReportOptions`).
- :mod:`bench.report.plots`, :mod:`bench.report.gallery`: the figures and per-class galleries.

Runs are read through :mod:`bench.store`. Importing this package loads nothing: import the module
you need (``from bench.report.leaderboard import write_leaderboard``).
"""
