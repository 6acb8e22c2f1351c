"""Launch files: one YAML file wires an inference process to one or more robots.

Every key is checked before any process starts: an unknown key or a missing field is an error
that names it. ``endpoint: auto`` picks a free loopback port.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vlash.scheduler import parse_mode


class LaunchError(ValueError):
    """A launch file that cannot be run, with the offending key in the message."""


TOP_KEYS = {"name": False, "fps": False, "mode": False, "endpoint": False, "inference": True, "robots": True, "curve": False}
INFERENCE_KEYS = {
    "policy": True, "latency": False,
    "estimator": False, "estimator_options": False, "fixed_delay_steps": False, "delay_quantile": False,
    "delay_margin_steps": False, "max_delay_steps": False,
}
ROBOT_KEYS = {
    "id": True, "driver": True, "chunk_size": False, "execution_horizon": False, "quantization": False,
    "max_step": False, "request_timeout_s": False, "link_timeout_s": False, "mode": False,
}
CURVE_KEYS = {
    "server_secret": True, "client_secret": True, "server_public": True, "allowed_clients": False,
    "robot_keys": False,
}


@dataclass
class RobotSpec:
    id: str
    driver: dict[str, Any]
    mode: str
    chunk_size: int = 50
    execution_horizon: int | None = None
    quantization: int = 1
    max_step: list[float] | None = None
    request_timeout_s: float = 1.0
    link_timeout_s: float = 1.0


@dataclass
class LaunchSpec:
    name: str
    fps: float
    mode: str
    endpoint: str
    inference: dict[str, Any]
    robots: list[RobotSpec]
    curve: dict[str, Any] | None = None
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def robot(self, robot_id: str) -> RobotSpec:
        for robot in self.robots:
            if robot.id == robot_id:
                return robot
        raise LaunchError(f"no robot {robot_id!r} in {self.source}; robots: {[r.id for r in self.robots]}")


def _check_keys(data: Any, schema: dict[str, bool], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise LaunchError(f"{where}: expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in schema:
            raise LaunchError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(schema))})")
    for key, required in schema.items():
        if required and key not in data:
            raise LaunchError(f"{where}: missing required key {key!r}")
    return data


def _check_factory(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("factory"), str) or ":" not in spec["factory"]:
        raise LaunchError(f"{where}: needs 'factory: package.module:callable'")
    return dict(spec)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_launch(data: dict[str, Any], source: str = "<launch>") -> LaunchSpec:
    """Validate a launch mapping and fill in defaults."""
    _check_keys(data, TOP_KEYS, source)
    try:
        mode = str(parse_mode(str(data.get("mode", "vlash"))))
    except ValueError as exc:
        raise LaunchError(f"{source}: mode: {exc}") from None
    fps = data.get("fps", 30)
    if not isinstance(fps, int | float) or fps <= 0:
        raise LaunchError(f"{source}: fps must be a positive number")
    inference = _check_keys(data["inference"], INFERENCE_KEYS, f"{source}: inference")
    inference["policy"] = _check_factory(inference["policy"], f"{source}: inference.policy")
    robots_raw = data["robots"]
    if not isinstance(robots_raw, list) or not robots_raw:
        raise LaunchError(f"{source}: robots must be a non-empty list")
    robots = []
    for i, raw in enumerate(robots_raw):
        where = f"{source}: robots[{i}]"
        raw = _check_keys(raw, ROBOT_KEYS, where)
        robot_mode = str(parse_mode(str(raw.get("mode", mode))))
        driver = _check_factory(raw["driver"], f"{where}.driver")
        robots.append(
            RobotSpec(
                id=str(raw["id"]),
                driver=driver,
                mode=robot_mode,
                chunk_size=int(raw.get("chunk_size", 50)),
                execution_horizon=raw.get("execution_horizon"),
                quantization=int(raw.get("quantization", 1)),
                max_step=raw.get("max_step"),
                request_timeout_s=float(raw.get("request_timeout_s", 1.0)),
                link_timeout_s=float(raw.get("link_timeout_s", 1.0)),
            )
        )
    if len({r.id for r in robots}) != len(robots):
        raise LaunchError(f"{source}: robot ids must be unique")
    curve = data.get("curve")
    if curve is not None:
        _check_keys(curve, CURVE_KEYS, f"{source}: curve")
        if curve.get("robot_keys") is not None:
            bound = _robot_keys(curve["robot_keys"], [r.id for r in robots], f"{source}: curve.robot_keys")
            curve = {**curve, "robot_keys": bound}
    endpoint = str(data.get("endpoint", "auto"))
    if endpoint == "auto":
        endpoint = f"tcp://127.0.0.1:{free_port()}"
    return LaunchSpec(
        name=str(data.get("name", Path(source).stem)),
        fps=float(fps),
        mode=mode,
        endpoint=endpoint,
        inference=inference,
        robots=robots,
        curve=curve,
        source=source,
        raw=data,
    )


def _robot_keys(robot_keys: Any, robot_ids: list[str], where: str) -> dict[str, list[str]]:
    """``robot_keys`` as robot id -> list of public key files; one entry needed per robot of the file."""
    if not isinstance(robot_keys, dict):
        raise LaunchError(f"{where} must map robot ids to public key files")
    bound = {}
    for robot, files in robot_keys.items():
        files = [files] if isinstance(files, str) else files
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            raise LaunchError(f"{where}.{robot}: expected a public key file or a list of them")
        bound[str(robot)] = files
    missing = [r for r in robot_ids if r not in bound]
    if missing:
        raise LaunchError(f"{where}: no key for robot {', '.join(missing)} (it would be refused by the server)")
    return bound


def load_launch(path: str | Path) -> LaunchSpec:
    path = Path(path)
    if not path.exists():
        raise LaunchError(f"launch file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise LaunchError(f"{path}: not valid YAML: {exc}") from None
    return parse_launch(data, str(path))


def server_curve(spec: LaunchSpec):
    """CurveZMQ settings for the inference side from the launch file's ``curve`` keys, or None."""
    if not spec.curve:
        return None
    from vlash.curve import CurveConfig, load_keypair

    allowed = spec.curve.get("allowed_clients")
    keys = None if allowed is None else [load_keypair(p).public for p in allowed]
    bound = spec.curve.get("robot_keys")
    robot_keys = None if bound is None else {
        robot: [load_keypair(p).public for p in files] for robot, files in bound.items()
    }
    return CurveConfig.server(load_keypair(spec.curve["server_secret"]), keys, robot_keys)


def client_curve(spec: LaunchSpec):
    """CurveZMQ settings for a control side from the launch file's ``curve`` keys, or None."""
    if not spec.curve:
        return None
    from vlash.curve import CurveConfig, load_keypair

    return CurveConfig.client(load_keypair(spec.curve["client_secret"]), load_keypair(spec.curve["server_public"]).public)

