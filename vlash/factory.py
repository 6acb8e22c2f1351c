"""Build objects named in launch files as ``"module:callable"`` plus keyword arguments.

This keeps the runtime core free of imports of concrete policies, simulators and robots: a
launch file says ``factory: sim.experts:make_expert`` and the core resolves it at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any


def resolve(path: str) -> Any:
    """The object named by ``"package.module:attribute"``, or a clear error."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"factory must look like 'package.module:callable', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"factory {path!r}: cannot import {module_name!r} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"factory {path!r}: {module_name!r} has no {attr!r}") from None


def build(spec: dict[str, Any]) -> Any:
    """Call ``spec["factory"]`` with the remaining keys as keyword arguments."""
    if not isinstance(spec, dict) or "factory" not in spec:
        raise ValueError(f"expected a mapping with a 'factory' key, got {spec!r}")
    options = {k: v for k, v in spec.items() if k != "factory"}
    return resolve(spec["factory"])(**options)
