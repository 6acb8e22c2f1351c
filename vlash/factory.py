"""Build objects named in launch files as ``"module:callable"`` plus keyword arguments.

This keeps the runtime core free of imports of concrete policies, simulators and robots: a
launch file says ``factory: sim.experts:make_expert`` and the core resolves it at start-up.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any


def resolve(path: str) -> Any:
    """The object named by ``"package.module:attribute"``, or a clear error."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"factory must look like 'package.module:callable', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # the module, or something it imports, is missing or broken
        raise ValueError(f"factory {path!r}: cannot import {module_name!r} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"factory {path!r}: {module_name!r} has no {attr!r}") from None


def check_arguments(factory: Any, options: Mapping[str, Any], name: str) -> None:
    """Raise ValueError unless ``factory(**options)`` matches its signature (``name`` is said in the error).

    An unknown keyword is named with the ones it takes; a callable taking ``**kwargs`` accepts any.
    What the values mean is the callable's to check when it runs.
    """
    if not callable(factory):
        raise ValueError(f"{name} is not callable")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to check against (some builtins)
        return
    params = signature.parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = [key for key in options if key not in known]
        if unknown:
            raise ValueError(f"{name} takes no keyword {unknown[0]!r} (it takes: {', '.join(known) or 'none'})")
    try:
        signature.bind(**options)
    except TypeError as exc:
        raise ValueError(f"{name}: {exc}") from None


def build(spec: dict[str, Any]) -> Any:
    """Call ``spec["factory"]`` with the remaining keys as keyword arguments."""
    if not isinstance(spec, dict) or "factory" not in spec:
        raise ValueError(f"expected a mapping with a 'factory' key, got {spec!r}")
    options = {k: v for k, v in spec.items() if k != "factory"}
    return resolve(spec["factory"])(**options)
