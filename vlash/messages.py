"""The wire protocol between control processes and the inference process.

A message is a msgpack map ``{"v": PROTOCOL_VERSION, "kind": str, "body": {field: value}}``.
NumPy arrays travel as ``{"dtype": str, "shape": [int, ...], "data": bytes}`` (little-endian,
C order, dtypes from a short whitelist); camera images (RGB, uint8, HxWx3) may instead travel
JPEG-compressed as ``{"codec": "jpeg", "dtype": "uint8", "shape": [h, w, 3], "data": bytes}``.
Nothing is ever pickled, so a payload can carry data but never code. An optional field (an
observation's ``history``) is left out of the body when empty and may be absent on receipt, so
peers that predate it still talk.

:func:`decode` validates everything before any value reaches the runtime and raises only
:class:`ProtocolError`, whose ``field`` names the offending field and whose ``reason`` is a
short stable key for rejection counters (:class:`RejectCounter`). :func:`encode` applies the
same limit-independent checks (types, dtypes, shapes, finite floats), so a sender learns about
a bad message before the receiver drops it. Decoded arrays are read-only views of the received
buffer: copy before mutating.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import msgpack
import numpy as np

from vlash.contracts import ObservationFrame
from vlash.wire_fields import (
    Array,
    Bool,
    Extras,
    Features,
    Float,
    History,
    Images,
    Int,
    Limits,
    Plain,
    ProtocolError,
    Spec,
    Str,
    check_history,
    check_keys,
)

__all__ = [
    "DEFAULT_LIMITS",
    "PROTOCOL_VERSION",
    "REASONS",
    "ActionChunk",
    "Config",
    "Error",
    "Heartbeat",
    "Hello",
    "Limits",
    "Message",
    "Observation",
    "ProtocolError",
    "RejectCounter",
    "decode",
    "encode",
]

PROTOCOL_VERSION = 1
DEFAULT_LIMITS = Limits()

#: Every ``ProtocolError.reason`` the decoder and the bus can produce (stable counter keys).
REASONS = (
    "truncated", "malformed", "trailing", "too_large", "version", "kind", "type", "missing",
    "unknown_field", "dtype", "shape", "nonfinite", "range", "empty", "codec", "internal",
    # raised by the bus, not the decoder:
    "frames", "direction", "wrong_robot", "unknown_robot", "id_taken", "too_many_robots", "wrong_key",
)  # fmt: skip

log = logging.getLogger("vlash.messages")


def _f(spec: Spec, optional: bool = False, **kwargs: Any) -> Any:
    """A dataclass field carrying its wire spec (``optional``: omitted when empty, may be absent)."""
    return field(metadata={"spec": spec, "optional": optional}, **kwargs)


def _empty_plan() -> np.ndarray:
    return np.zeros((0, 0), np.float32)


def _no_hold() -> np.ndarray:
    return np.zeros(0, np.float32)


_ROBOT_ID = Str(max_attr="max_id_len", nonempty=True)
_SEQ = Int()
_STEP = Int()
_NAME = Str(max_attr="max_id_len")


@dataclass(frozen=True, slots=True, eq=False)
class Observation:
    """The robot at control step ``step``, plus what it will do next.

    ``plan`` row ``i`` is the queued action for step ``plan_start_step + i`` (P may be 0);
    ``hold`` is what the robot executes where nothing is queued (its last target; empty: unknown);
    ``last_rtt_ms`` is the latest measured round trip, -1 before any; ``history`` the robot's
    readings of the control steps just before ``step`` (oldest first, without images), for a policy
    that conditions on past observations (optional: absent for the others).
    """

    KIND: ClassVar[str] = "observation"
    robot_id: str = _f(_ROBOT_ID)
    seq: int = _f(_SEQ)
    step: int = _f(_STEP)
    wall_time: float = _f(Float(minimum=0.0))
    state: np.ndarray = _f(Array(ndim=1, min_dims=(1,)))
    images: dict[str, np.ndarray] = _f(Images(), default_factory=dict)
    task: str = _f(Str(), default="")
    plan_start_step: int = _f(_STEP, default=0)
    plan: np.ndarray = _f(Array(ndim=2), default_factory=_empty_plan)
    hold: np.ndarray = _f(Array(ndim=1), default_factory=_no_hold)
    extras: dict[str, np.ndarray] = _f(Extras(), default_factory=dict)
    last_rtt_ms: float = _f(Float(minimum=-1.0), default=-1.0)
    history: tuple[ObservationFrame, ...] = _f(History(), optional=True, default=())


@dataclass(frozen=True, slots=True, eq=False)
class ActionChunk:
    """Actions ``actions[i]`` for control steps ``start_step + i``, answering ``obs_seq``."""

    KIND: ClassVar[str] = "action_chunk"
    robot_id: str = _f(_ROBOT_ID)
    seq: int = _f(_SEQ)
    chunk_id: int = _f(Int())
    obs_seq: int = _f(_SEQ)
    obs_step: int = _f(_STEP)
    start_step: int = _f(_STEP)
    actions: np.ndarray = _f(Array(ndim=2, min_dims=(1, 1)))
    mode: str = _f(_NAME, default="")
    delay_steps: int = _f(Int(), default=0)
    estimator: str = _f(_NAME, default="")
    model_ms: float = _f(Float(), default=0.0)
    queue_ms: float = _f(Float(), default=0.0)
    server_ms: float = _f(Float(), default=0.0)


@dataclass(frozen=True, slots=True, eq=False)
class Hello:
    """A control process introducing its robot (features as plain data) to the server."""

    KIND: ClassVar[str] = "hello"
    robot_id: str = _f(_ROBOT_ID)
    seq: int = _f(_SEQ)
    features: dict[str, Any] = _f(Features(), default_factory=dict)
    fps: float = _f(Float(minimum=0.0, positive=True), default=30.0)
    mode: str = _f(_NAME, default="")
    chunk_settings: dict[str, Any] = _f(Plain(), default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class Config:
    """The server's answer to a :class:`Hello`."""

    KIND: ClassVar[str] = "config"
    robot_id: str = _f(_ROBOT_ID)
    seq: int = _f(_SEQ)
    accepted: bool = _f(Bool(), default=True)
    policy: dict[str, Any] = _f(Plain(), default_factory=dict)
    reason: str = _f(Str(), default="")


@dataclass(frozen=True, slots=True, eq=False)
class Heartbeat:
    """Proof of life, sent by either side when it has had nothing else to say for a while."""

    KIND: ClassVar[str] = "heartbeat"
    robot_id: str = _f(_ROBOT_ID)
    seq: int = _f(_SEQ)
    wall_time: float = _f(Float(minimum=0.0), default=0.0)


@dataclass(frozen=True, slots=True, eq=False)
class Error:
    """A problem report (``code`` is a short machine-readable key)."""

    KIND: ClassVar[str] = "error"
    robot_id: str = _f(_ROBOT_ID)
    seq: int = _f(_SEQ)
    code: str = _f(_NAME, default="")
    message: str = _f(Str(), default="")


Message = Observation | ActionChunk | Hello | Config | Heartbeat | Error

_CLASSES: dict[str, type] = {
    cls.KIND: cls for cls in (Observation, ActionChunk, Hello, Config, Heartbeat, Error)
}
_SPECS: dict[type, tuple[tuple[str, Spec], ...]] = {
    cls: tuple((f.name, f.metadata["spec"]) for f in fields(cls)) for cls in _CLASSES.values()
}
_NAMES: dict[type, frozenset[str]] = {
    cls: frozenset(name for name, _ in specs) for cls, specs in _SPECS.items()
}
_OPTIONAL: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in fields(cls) if f.metadata["optional"]) for cls in _CLASSES.values()
}
_ENVELOPE = frozenset({"v", "kind", "body"})


def encode(msg: Message, *, jpeg_quality: int | None = None) -> bytes:
    """Serialize ``msg``; with ``jpeg_quality`` (1-100) camera images travel JPEG-compressed.

    Raises :class:`ProtocolError` when the message cannot be represented (wrong types, object
    or non-numeric dtypes, wrong shapes, NaN/inf actions).
    """
    specs = _SPECS.get(type(msg))
    if specs is None:
        raise ProtocolError("kind", "kind", f"not a message: {type(msg).__name__}")
    if jpeg_quality is not None and (
        isinstance(jpeg_quality, bool)
        or not isinstance(jpeg_quality, numbers.Integral)
        or not 1 <= jpeg_quality <= 100
    ):
        raise ValueError(f"jpeg_quality must be an int in 1..100, got {jpeg_quality!r}")
    optional = _OPTIONAL[type(msg)]
    body = {
        name: spec.pack(name, getattr(msg, name), jpeg_quality)
        for name, spec in specs
        if name not in optional or len(getattr(msg, name))
    }
    _check_across(type(msg), {name: getattr(msg, name) for name, _ in specs})
    try:
        return msgpack.packb({"v": PROTOCOL_VERSION, "kind": msg.KIND, "body": body})
    except (OverflowError, ValueError, TypeError) as exc:  # defensive: specs normalize every value
        raise ProtocolError("message", "type", str(exc)) from exc


def decode(data: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Parse and validate one message; raises only :class:`ProtocolError`."""
    try:
        size = memoryview(data).nbytes
    except TypeError:
        raise ProtocolError("message", "type", f"expected bytes, got {type(data).__name__}") from None
    if size == 0:
        raise ProtocolError("message", "truncated", "empty payload")
    if size > limits.max_bytes:
        raise ProtocolError("message", "too_large", f"{size} bytes > {limits.max_bytes}")
    obj = _unpack(data, limits)
    try:
        return _from_wire(obj, limits)
    except ProtocolError:
        raise
    except Exception as exc:  # a validator bug must still not crash the receiving loop
        log.error("decode: unexpected %r", exc)
        raise ProtocolError("message", "internal", repr(exc)[:200]) from exc


def _unpack(data: bytes | bytearray | memoryview, limits: Limits) -> Any:
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_bytes,
            max_array_len=limits.max_container_len,
            max_map_len=limits.max_container_len,
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise ProtocolError("message", "trailing", "bytes after the message") from None
    except ValueError as exc:  # msgpack says what went wrong only in the text
        text = str(exc)
        if "incomplete" in text:
            reason = "truncated"
        elif "max_ext_len" in text:
            reason, text = "type", "msgpack extension types are not allowed"
        elif "exceeds max" in text:
            reason = "too_large"
        else:
            reason = "malformed"
        raise ProtocolError("message", reason, text[:200]) from None
    except Exception as exc:
        raise ProtocolError("message", "malformed", repr(exc)[:200]) from None


def _from_wire(obj: Any, limits: Limits) -> Message:
    if not isinstance(obj, dict):
        raise ProtocolError("message", "type", f"expected a map, got {type(obj).__name__}")
    check_keys("", obj, _ENVELOPE)
    version = obj["v"]
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError("v", "version", f"got {version!r:.40}, this side speaks {PROTOCOL_VERSION}")
    kind = obj["kind"]
    cls = _CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError("kind", "kind", f"unknown kind {kind!r:.40}")
    body = obj["body"]
    if not isinstance(body, dict):
        raise ProtocolError("body", "type", f"expected a map, got {type(body).__name__}")
    check_keys("", body, _NAMES[cls], _OPTIONAL[cls])
    values = {name: spec.unpack(name, body[name], limits) for name, spec in _SPECS[cls] if name in body}
    _check_across(cls, values)
    return cls(**values)


def _check_across(cls: type, values: dict[str, Any]) -> None:
    """The rules between fields: an observation's history must fit its step, state and extras."""
    if cls is Observation and values.get("history"):
        check_history("history", tuple(values["history"]), values["step"], values["state"], values["extras"])


class RejectCounter(Counter[str]):
    """Counts rejected messages by ``ProtocolError.reason`` and logs them without flooding.

    A reason is logged the 1st, 10th, 100th, ... time it occurs, so garbage from a
    misbehaving peer cannot drown the log while every rejection is still counted.
    """

    def __init__(self, source: str = "", logger: logging.Logger | None = None) -> None:
        super().__init__()
        self.source = source
        self.logger = logger or log

    def reject(self, err: ProtocolError, peer: str = "") -> None:
        """Count ``err`` and log it when its count reaches a power of ten."""
        self[err.reason] += 1
        n = self[err.reason]
        if n == 10 ** int(math.log10(n)):
            who = f" from {peer}" if peer else ""
            self.logger.warning("%srejected message%s: %s (%s #%d)", self._prefix(), who, err, err.reason, n)

    def _prefix(self) -> str:
        return f"{self.source}: " if self.source else ""
