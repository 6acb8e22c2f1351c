"""Experiments: evaluation grids, studies, benchmarks, plots and results generation.

A layer on top of the runtime core. It is the only part of ``vlash/`` that names concrete
simulators and policies (by factory path); the core never imports it.
"""
