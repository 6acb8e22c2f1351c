"""LeRobot's robot and camera registries: config types by name, built from plain options.

Robot types exist only once their subpackage is imported, so the registries are filled on first
use (LeRobot's own robot and camera subpackages, then ``lerobot_robot_*`` / ``lerobot_camera_*``
plugins when a type is still unknown). Configs are decoded with draccus, as LeRobot's CLI does.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import pkgutil
from collections.abc import Mapping
from typing import Any

import draccus
from lerobot.cameras import CameraConfig
from lerobot.robots import RobotConfig

logger = logging.getLogger(__name__)

_PLUGIN_PREFIXES = ("lerobot_robot_", "lerobot_camera_")
_registries_loaded = False
_plugins_loaded = False


# --- LeRobot's registries --------------------------------------------------------------------------
def _import_subpackages(package: str) -> None:
    """Import every subpackage of ``package`` so its config classes register themselves."""
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg:
            try:
                importlib.import_module(f"{package}.{info.name}")
            except Exception as e:  # noqa: BLE001 - an optional robot whose deps are missing
                logger.debug("could not import %s.%s: %s", package, info.name, e)


def _load_registries(plugins: bool = False) -> None:
    """Register LeRobot's built-in robot/camera configs (and, if asked, ``lerobot_robot_*`` plugins)."""
    global _registries_loaded, _plugins_loaded
    if not _registries_loaded:
        _import_subpackages("lerobot.robots")
        _import_subpackages("lerobot.cameras")
        _registries_loaded = True
    if plugins and not _plugins_loaded:
        # Like lerobot.utils.import_utils.register_third_party_plugins, but only robots and cameras
        # (importing every lerobot_env_*/lerobot_policy_* package would be slow and irrelevant here).
        for dist in importlib.metadata.distributions():
            name = dist.metadata.get("Name") or ""
            module = name.replace("-", "_")
            if module.startswith(_PLUGIN_PREFIXES):
                try:
                    importlib.import_module(module)
                except Exception as e:  # noqa: BLE001
                    logger.warning("could not import LeRobot plugin %s: %s", module, e)
        _plugins_loaded = True


def known_robot_types() -> list[str]:
    """Robot types LeRobot's registry knows (built-ins, installed plugins, anything registered)."""
    _load_registries(plugins=True)
    return sorted(RobotConfig.get_known_choices())


def known_camera_types() -> list[str]:
    """Camera types LeRobot's registry knows."""
    _load_registries(plugins=True)
    return sorted(CameraConfig.get_known_choices())


def robot_config_class(robot_type: str) -> type:
    _load_registries()
    known = RobotConfig.get_known_choices()
    if robot_type not in known:
        _load_registries(plugins=True)
        known = RobotConfig.get_known_choices()
    if robot_type not in known:
        raise ValueError(
            f"unknown LeRobot robot_type {robot_type!r}; known types: {', '.join(sorted(known))} "
            "(third-party robots register through an installed 'lerobot_robot_*' package)"
        )
    return known[robot_type]


def make_robot_config(robot_type: str, **options: Any) -> Any:
    """Decode ``options`` into the LeRobot ``RobotConfig`` registered as ``robot_type``.

    Options that are ``None`` are left at the config's default. Raises ``ValueError`` naming the
    unknown type, an unknown option or a missing required one.
    """
    config_cls = robot_config_class(robot_type)
    values = {k: v for k, v in options.items() if v is not None}
    try:
        return draccus.decode(RobotConfig, {"type": robot_type, **values})
    except draccus.utils.DecodingError as e:
        names = sorted(f.name for f in dataclasses.fields(config_cls))
        raise ValueError(f"invalid options for robot_type {robot_type!r}: {e} (its options: {names})") from e


def make_camera_configs(cameras: Mapping[str, Any] | None) -> dict[str, Any]:
    """Plain camera dicts (with a ``type`` key) → LeRobot ``CameraConfig`` s; configs pass through."""
    _load_registries()
    configs: dict[str, Any] = {}
    for name, spec in (cameras or {}).items():
        if isinstance(spec, CameraConfig):
            config = spec
        else:
            if not isinstance(spec, Mapping) or "type" not in spec:
                raise ValueError(f"camera {name!r}: expected a dict with a 'type' key, got {spec!r}")
            if spec["type"] not in CameraConfig.get_known_choices():
                _load_registries(plugins=True)
            if spec["type"] not in CameraConfig.get_known_choices():
                raise ValueError(
                    f"camera {name!r}: unknown camera type {spec['type']!r}; "
                    f"known types: {', '.join(sorted(CameraConfig.get_known_choices()))}"
                )
            try:
                config = draccus.decode(CameraConfig, dict(spec))
            except draccus.utils.DecodingError as e:
                raise ValueError(f"camera {name!r}: {e}") from e
        missing = [a for a in ("width", "height", "fps") if getattr(config, a, None) is None]
        if missing:
            raise ValueError(f"camera {name!r}: {missing} must be given (the runtime needs the frame size)")
        configs[str(name)] = config
    return configs


# --- the driver -----------------------------------------------------------------------------------
