"""Policies: the policy interface, the LeRobot adapter, latency emulation, record/train.

Importing this package is cheap: heavy modules (torch, lerobot) load only when their
submodules are imported.
"""

from policies.interface import ActionKind, Policy, PolicyFeatures, PolicyObservation

__all__ = ["ActionKind", "Policy", "PolicyFeatures", "PolicyObservation"]
