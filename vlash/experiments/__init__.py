"""Experiments: evaluation grids, studies, benchmarks, plots and results generation.

A layer on top of the runtime core; the core never imports it. It is the only part of ``vlash/``
(besides the CLI in ``vlash/commands/``) that names concrete simulators and policies, by the
factory paths in :mod:`vlash.experiments.parts`. ``RESULTS.md`` is ``results_template.md``
filled by :mod:`vlash.experiments.results`.
"""
