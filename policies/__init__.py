"""Policies: the LeRobot adapter, latency emulation, record and offset-aware training.

They implement :class:`vlash.contracts.Policy`. Importing this package is cheap: heavy modules
(torch, lerobot) load only when their submodules are imported.
"""
