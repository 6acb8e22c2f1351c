"""Launch files: one YAML file wires an inference process to one or more robots.

:func:`parse_launch` turns the file into typed configs (:class:`LaunchSpec`) once, before any
process starts. Every key is checked: an unknown key, a missing field, a wrong type (``fps: true``
is not a number) or an out-of-range value is one :class:`LaunchError` line naming the key, e.g.
``launch/x.yaml: robots[0].execution_horizon: 60 > chunk_size 50``. :func:`check_factories` then
imports the policy, driver and estimator factories the file names and checks that they accept
its keyword arguments. ``endpoint: auto`` picks a free loopback port; ``endpoint: ipc`` a Unix socket
in a fresh folder only this user can enter (:func:`private_ipc_endpoint`).
"""

from __future__ import annotations

import math
import re
import socket
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from vlash.factory import build, check_arguments, resolve
from vlash.future_state import estimator_factory, known_estimators
from vlash.scheduler import AUTO, parse_mode
from vlash.wire_fields import Limits


class LaunchError(ValueError):
    """A launch file that cannot be run, with the offending key in the message."""


TOP_KEYS = {"name": False, "fps": False, "mode": False, "endpoint": False, "inference": True, "robots": True, "curve": False}
INFERENCE_KEYS = {
    "policy": True, "latency": False, "latency_per_item_ms": False, "batching": False,
    "batch_gather_ms": False,
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
# a robot id names its run folder and log file, so it is a plain file name
ROBOT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class FactorySpec:
    """A ``module:callable`` and the keyword arguments it is called with."""

    factory: str
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        return build({"factory": self.factory, **self.options})


@dataclass(frozen=True)
class InferenceSpec:
    policy: FactorySpec
    latency: float | str | None = None  # emulated model latency (ms, or a distribution / preset name)
    estimator: str | None = None  # None: the default for the mode and action kind
    estimator_options: dict[str, Any] = field(default_factory=dict)
    fixed_delay_steps: int | None = None  # None: Δ from measured round trips
    delay_quantile: float = 0.95
    delay_margin_steps: int | None = None  # None: 1, or 0 for a streaming robot
    max_delay_steps: int | None = None
    latency_per_item_ms: float | None = None  # emulated cost of each extra item in a batch (None: a full draw)
    batching: bool = True  # robots waiting together share one policy call
    batch_gather_ms: float = 1.0  # how long the first of several robots' observations waits for the others


@dataclass(frozen=True)
class RobotSpec:
    id: str
    driver: FactorySpec
    mode: str
    chunk_size: int = 50
    execution_horizon: int | str = 50  # K, or "auto" (streaming: K = max(Δ, 1)); defaults to the chunk size
    quantization: int = 1
    max_step: float | list[float] | None = None
    request_timeout_s: float = 1.0
    link_timeout_s: float = 1.0


@dataclass(frozen=True)
class CurveSpec:
    """Key files for CurveZMQ; ``robot_keys`` binds each robot id to the client keys that may speak for it."""

    server_secret: str
    client_secret: str
    server_public: str
    allowed_clients: list[str] | None = None
    robot_keys: dict[str, list[str]] | None = None


@dataclass
class LaunchSpec:
    name: str
    fps: float
    mode: str
    endpoint: str
    inference: InferenceSpec
    robots: list[RobotSpec]
    curve: CurveSpec | None = None
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def robot(self, robot_id: str) -> RobotSpec:
        for robot in self.robots:
            if robot.id == robot_id:
                return robot
        raise LaunchError(f"no robot {robot_id!r} in {self.source}; robots: {[r.id for r in self.robots]}")


# --- reading one mapping ------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    """An int or float that is finite; ``True``/``False`` are not numbers here."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Section:
    """One mapping of the launch file (top level, ``inference``, ``robots[i]``, ``curve``).

    Checks its keys against ``schema`` (key -> required); each getter reads one key, checks its
    type and range, and raises a :class:`LaunchError` that names ``source: path.key``.
    """

    def __init__(self, data: Any, schema: dict[str, bool], source: str, path: str = "") -> None:
        self.source, self.path = source, path
        where = f"{source}: {path}" if path else source
        if not isinstance(data, dict):
            raise LaunchError(f"{where}: expected a mapping, got {type(data).__name__}")
        for key in data:
            if key not in schema:
                raise LaunchError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(schema))})")
        for key, required in schema.items():
            if required and key not in data:
                raise LaunchError(f"{where}: missing required key {key!r}")
        self.data: dict[str, Any] = data

    def where(self, key: str) -> str:
        return f"{self.source}: {self.path}.{key}" if self.path else f"{self.source}: {key}"

    def fail(self, key: str, problem: str) -> NoReturn:
        raise LaunchError(f"{self.where(key)}: {problem}")

    def integer(self, key: str, default: int | None, minimum: int) -> int | None:
        value = self.data.get(key, default)
        if value is None and default is None:
            return None
        if not _is_int(value) or value < minimum:
            self.fail(key, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def number(self, key: str, default: float | None, ok: Callable[[float], bool], what: str) -> float | None:
        """A finite number for which ``ok`` holds (``what`` says which, e.g. ``"a number > 0"``)."""
        value = self.data.get(key, default)
        if value is None and default is None:
            return None
        if not _is_number(value) or not ok(value):
            self.fail(key, f"expected {what}, got {value!r}")
        return float(value)

    def string(self, key: str, default: str | None) -> str | None:
        value = self.data.get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            self.fail(key, f"expected a mapping of names to values, got {value!r}")
        return dict(value)

    def mode(self, key: str, default: str) -> str:
        name = self.string(key, default)
        try:
            return str(parse_mode(name))
        except ValueError as exc:
            self.fail(key, str(exc))

    def factory(self, key: str) -> FactorySpec:
        value = self.data.get(key)
        path = value.get("factory") if isinstance(value, dict) else None
        if not isinstance(path, str) or not re.fullmatch(r"[\w.]+:[\w.]+", path):
            self.fail(key, f"needs 'factory: package.module:callable' (plus its keyword arguments), got {value!r}")
        options = {k: v for k, v in value.items() if k != "factory"}
        if not all(isinstance(k, str) for k in options):
            self.fail(key, f"keyword argument names must be strings, got {list(options)!r}")
        return FactorySpec(path, options)


# --- the file ------------------------------------------------------------------------------------
def private_ipc_endpoint() -> str:
    """``ipc://`` in a new 0700 folder: unlike a loopback TCP port, which any local user can reach, only this
    user (and root) can connect, so the file system keeps strangers on the machine off the bus."""
    return f"ipc://{tempfile.mkdtemp(prefix='vlash-bus-')}/bus"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_launch(data: dict[str, Any], source: str = "<launch>") -> LaunchSpec:
    """Validate a launch mapping and fill in defaults (no factory is imported: see :func:`check_factories`)."""
    top = _Section(data, TOP_KEYS, source)
    mode = top.mode("mode", "vlash")
    fps = top.number("fps", 30, lambda v: v > 0, "a number > 0 (control rate in Hz)")
    inference = _inference(_Section(data["inference"], INFERENCE_KEYS, source, "inference"))
    robots_raw = data["robots"]
    if not isinstance(robots_raw, list) or not robots_raw:
        top.fail("robots", "expected a non-empty list of robots")
    robots = [_robot(_Section(raw, ROBOT_KEYS, source, f"robots[{i}]"), mode) for i, raw in enumerate(robots_raw)]
    ids = [r.id for r in robots]
    if len(set(ids)) != len(ids):
        top.fail("robots", f"robot ids must be unique, got {ids}")
    curve = None if data.get("curve") is None else _curve(_Section(data["curve"], CURVE_KEYS, source, "curve"), ids)
    endpoint = top.string("endpoint", "auto")
    if endpoint == "auto":
        endpoint = f"tcp://127.0.0.1:{free_port()}"
    elif endpoint == "ipc":
        endpoint = private_ipc_endpoint()
    elif "://" not in endpoint:
        top.fail("endpoint", f"expected 'auto', 'ipc' or a ZeroMQ endpoint like tcp://127.0.0.1:5555, got {endpoint!r}")
    return LaunchSpec(
        name=top.string("name", Path(source).stem or "launch"),
        fps=fps,
        mode=mode,
        endpoint=endpoint,
        inference=inference,
        robots=robots,
        curve=curve,
        source=source,
        raw=data,
    )


def _inference(sec: _Section) -> InferenceSpec:
    latency = sec.data.get("latency")
    milliseconds = _is_number(latency) and latency >= 0
    named = isinstance(latency, str) and bool(latency.strip())  # parsed by the inference side (policies.latency)
    if latency is not None and not (milliseconds or named):
        sec.fail("latency", f"expected milliseconds >= 0 or a distribution like 'normal:150,10', got {latency!r}")
    estimator = sec.string("estimator", None)
    if estimator is not None and ":" not in estimator:  # a factory path is imported by check_factories
        if estimator not in known_estimators():
            sec.fail("estimator", f"unknown future-state estimator {estimator!r}; known: "
                                  f"{', '.join(known_estimators())} (or a 'package.module:callable' factory path)")
    batching = sec.data.get("batching", True)
    if not isinstance(batching, bool):
        sec.fail("batching", f"expected true or false, got {batching!r}")
    per_item = sec.number("latency_per_item_ms", None, lambda v: v >= 0, "milliseconds >= 0")
    if per_item is not None and latency is None:
        sec.fail("latency_per_item_ms", "given without a latency (it is part of the emulated latency)")
    estimator_options = sec.mapping("estimator_options")
    if estimator_options and estimator is None:
        sec.fail("estimator_options", "given without an estimator (name one: the default estimators take no options)")
    return InferenceSpec(
        policy=sec.factory("policy"),
        latency=latency,
        estimator=estimator,
        estimator_options=estimator_options,
        fixed_delay_steps=sec.integer("fixed_delay_steps", None, 0),
        delay_quantile=sec.number("delay_quantile", 0.95, lambda v: 0 < v <= 1, "a quantile in (0, 1]"),
        delay_margin_steps=sec.integer("delay_margin_steps", None, 0),
        max_delay_steps=sec.integer("max_delay_steps", None, 1),
        latency_per_item_ms=per_item,
        batching=batching,
        batch_gather_ms=sec.number("batch_gather_ms", 1.0, lambda v: 0 <= v <= 100, "milliseconds in 0..100"),
    )


def _robot(sec: _Section, mode: str) -> RobotSpec:
    robot_id = sec.data.get("id")
    max_len = Limits().max_id_len
    if not isinstance(robot_id, str) or not ROBOT_ID.fullmatch(robot_id) or len(robot_id) > max_len:
        sec.fail("id", f"expected a non-empty name of letters, digits, '_', '.' or '-' (at most {max_len}), "
                       f"got {robot_id!r}")
    chunk_size = sec.integer("chunk_size", 50, 1)
    horizon = sec.data.get("execution_horizon", chunk_size)
    if horizon != AUTO:  # "auto": the streaming schedule, K = max(Δ, 1)
        horizon = sec.integer("execution_horizon", chunk_size, 1)
        if horizon > chunk_size:
            sec.fail("execution_horizon", f"{horizon} > chunk_size {chunk_size}")
    max_step = sec.data.get("max_step")
    if max_step is not None:
        values = max_step if isinstance(max_step, list) else [max_step]
        if not values or not all(_is_number(v) and v > 0 for v in values):
            sec.fail("max_step", f"expected a number > 0 or a list of them (per joint), got {max_step!r}")
        max_step = [float(v) for v in max_step] if isinstance(max_step, list) else float(max_step)
    return RobotSpec(
        id=robot_id,
        driver=sec.factory("driver"),
        mode=sec.mode("mode", mode),
        chunk_size=chunk_size,
        execution_horizon=horizon,
        quantization=sec.integer("quantization", 1, 1),
        max_step=max_step,
        request_timeout_s=sec.number("request_timeout_s", 1.0, lambda v: v > 0, "seconds > 0"),
        link_timeout_s=sec.number("link_timeout_s", 1.0, lambda v: v > 0, "seconds > 0"),
    )


def _key_files(sec: _Section, key: str, value: Any) -> list[str]:
    files = [value] if isinstance(value, str) else value
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        sec.fail(key, "expected a public key file or a list of them")
    return files


def _curve(sec: _Section, robot_ids: list[str]) -> CurveSpec:
    allowed = sec.data.get("allowed_clients")
    bound = sec.data.get("robot_keys")
    if bound is not None:
        if not isinstance(bound, dict):
            sec.fail("robot_keys", "expected a mapping of robot ids to public key files")
        bound = {str(robot): _key_files(sec, f"robot_keys.{robot}", files) for robot, files in bound.items()}
        missing = [r for r in robot_ids if r not in bound]
        if missing:
            sec.fail("robot_keys", f"no key for robot {', '.join(missing)} (it would be refused by the server)")
    return CurveSpec(
        server_secret=sec.string("server_secret", None),
        client_secret=sec.string("client_secret", None),
        server_public=sec.string("server_public", None),
        allowed_clients=None if allowed is None else _key_files(sec, "allowed_clients", allowed),
        robot_keys=bound,
    )


def load_launch(path: str | Path) -> LaunchSpec:
    path = Path(path)
    if not path.exists():
        raise LaunchError(f"launch file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        problem = str(exc).replace("\n", " ")
        raise LaunchError(f"{path}: not valid YAML: {problem}") from None
    return parse_launch(data, str(path))


# --- what the processes will build -------------------------------------------------------------
def check_factories(spec: LaunchSpec, *, inference: bool = True, robots: Collection[str] | None = None) -> None:
    """Import the factories the file names and check they accept its keyword arguments.

    ``inference``: the policy and estimator; ``robots``: the drivers of these robot ids (None: all).
    Runs in the parent, before any process starts; what only a built or connected object can tell
    (a sim task's name, a camera) is the child's to report.
    """
    source = spec.source
    if inference:
        _check_factory(spec.inference.policy, f"{source}: inference.policy")
        if spec.inference.estimator is not None:
            try:
                factory = estimator_factory(spec.inference.estimator)
                check_arguments(factory, spec.inference.estimator_options, spec.inference.estimator)
            except ValueError as exc:
                raise LaunchError(f"{source}: inference.estimator: {exc}") from None
    for i, robot in enumerate(spec.robots):
        if robots is None or robot.id in robots:
            _check_factory(robot.driver, f"{source}: robots[{i}].driver")


def _check_factory(spec: FactorySpec, where: str) -> None:
    try:
        check_arguments(resolve(spec.factory), spec.options, spec.factory)
    except ValueError as exc:
        raise LaunchError(f"{where}: {exc}") from None


# --- CurveZMQ -----------------------------------------------------------------------------------
def server_curve(spec: LaunchSpec):
    """CurveZMQ settings for the inference side from the launch file's ``curve`` keys, or None."""
    if spec.curve is None:
        return None
    from vlash.curve import CurveConfig, load_keypair

    allowed = spec.curve.allowed_clients
    keys = None if allowed is None else [load_keypair(p).public for p in allowed]
    bound = spec.curve.robot_keys
    robot_keys = None if bound is None else {
        robot: [load_keypair(p).public for p in files] for robot, files in bound.items()
    }
    return CurveConfig.server(load_keypair(spec.curve.server_secret), keys, robot_keys)


def client_curve(spec: LaunchSpec):
    """CurveZMQ settings for a control side from the launch file's ``curve`` keys, or None."""
    if spec.curve is None:
        return None
    from vlash.curve import CurveConfig, load_keypair

    return CurveConfig.client(load_keypair(spec.curve.client_secret), load_keypair(spec.curve.server_public).public)
