"""The ZeroMQ bus between one inference process and the control processes of its robots.

The inference side binds a ROUTER (:class:`InferenceEndpoint`); each control process connects
a DEALER (:class:`ControlEndpoint`). Robots are addressed by the ``robot_id`` their messages
carry; a robot that restarts (new ZeroMQ identity, same id) simply takes over its id. Only the
newest observation of each robot is kept for inference, older ones are dropped and counted.
Nothing on the control side ever blocks: zero-timeout polls, a tiny send queue that drops
(and counts) instead of waiting, no lingering on close. Bad messages are rejected with a
counter per reason (:class:`~vlash.messages.RejectCounter`); neither side ever raises on them.

Endpoints are loopback by default; any other endpoint requires CurveZMQ keys
(:class:`~vlash.curve.CurveConfig`), so nobody without a key can send a robot actions or read
its cameras; with ``robot_keys`` a client key may speak only for the robots bound to it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass

import zmq

from vlash.curve import (
    CurveConfig,
    InsecureEndpointError,
    KeyPair,
    check_endpoint,
    generate_keypair,
    is_loopback,
    load_keypair,
    save_keypair,
    start_authenticator,
)
from vlash.messages import (
    DEFAULT_LIMITS,
    ActionChunk,
    Config,
    Error,
    Heartbeat,
    Hello,
    Limits,
    Message,
    Observation,
    ProtocolError,
    RejectCounter,
    decode,
    encode,
)

__all__ = [
    "ControlEndpoint",
    "CurveConfig",
    "InferenceEndpoint",
    "InsecureEndpointError",
    "KeyPair",
    "generate_keypair",
    "is_loopback",
    "load_keypair",
    "save_keypair",
]

log = logging.getLogger("vlash.bus")

#: What the command-line tools add to an :class:`InsecureEndpointError`.
KEYS_HINT = (
    "\n  For a launch file: create key pairs with `vlash keys --out keys --name server` (and one per "
    "robot) and add a `curve:` section (server_secret, server_public, client_secret, allowed_clients); "
    "see docs/SAFETY.md."
)



class _Endpoint:
    """What both sides share: one socket in a private context, counters, clean close."""

    def __init__(self, kind: int, limits: Limits, sndhwm: int, rcvhwm: int, source: str) -> None:
        self.limits = limits
        self.stats: Counter[str] = Counter(dict.fromkeys(("received", "sent", "send_dropped"), 0))
        self.rejects = RejectCounter(source, log)  # bad messages received
        # our own messages that could not be encoded (e.g. a NaN state from a sensor)
        self.invalid = RejectCounter(f"{source} (outgoing)", log)
        self._seq = 0
        self._ctx = zmq.Context()
        self._auth = None  # a ZAP authenticator thread, server side only
        self._sock: zmq.Socket | None = self._ctx.socket(kind)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, sndhwm)
        self._sock.setsockopt(zmq.RCVHWM, rcvhwm)
        # Far beyond the decoder's limit: those messages are still read and counted as too_large;
        # only a peer sending absurd sizes is disconnected by libzmq before it costs memory.
        self._sock.setsockopt(zmq.MAXMSGSIZE, 4 * limits.max_bytes + 4096)

    @property
    def counters(self) -> dict[str, int]:
        """Flat counters for status lines: traffic, drops, ``rejected[_<reason>]``, ``unsendable_<reason>``."""
        out = dict(self.stats)
        out["rejected"] = self.rejects.total()
        out.update({f"rejected_{reason}": n for reason, n in sorted(self.rejects.items())})
        out.update({f"unsendable_{reason}": n for reason, n in sorted(self.invalid.items())})
        return out

    def _encode(self, msg: Message, jpeg_quality: int | None = None) -> bytes | None:
        """``msg`` on the wire, or None (counted and logged) if it is invalid, e.g. NaN in a state."""
        try:
            return encode(msg, jpeg_quality=jpeg_quality)
        except ProtocolError as err:
            self.invalid.reject(err)
            return None

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            raise RuntimeError("endpoint is closed")
        return self._sock

    def close(self) -> None:
        """Close the socket without lingering (queued messages are discarded), end the context. Idempotent."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> _Endpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Peer:
    identity: bytes  # the connection that owns the robot id
    last_heard: float
    last_sent: float
    key: str | None = None  # its CurveZMQ public key (Z85), when keys are in use


OWNERSHIP_HINTS = {
    "unknown_robot": "send Hello first",
    "id_taken": "another connection owns this robot id (it is taken over only once its owner is silent)",
    "too_many_robots": "this server serves as many robots as it takes; try again later",
}


def _user_id(frame: zmq.Frame) -> str | None:
    """The ZAP User-Id of the connection a frame came in on (a CURVE client's Z85 public key), or None."""
    try:
        return frame.get("User-Id")
    except (zmq.ZMQError, AttributeError):
        return None


class InferenceEndpoint(_Endpoint):
    """The inference side: a ROUTER that binds and serves any number of robots.

    ``endpoint`` may end in ``:*`` for a free port; :attr:`endpoint` is then the bound address.
    Transport only: it routes, validates and keeps the newest observation per robot; Hellos are
    queued for the server (:meth:`hellos`), which decides who is served (:mod:`vlash.inference`).
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5555",
        *,
        curve: CurveConfig | None = None,
        heartbeat_timeout_s: float = 2.0,
        heartbeat_interval_s: float | None = None,
        limits: Limits = DEFAULT_LIMITS,
        max_batch: int = 10_000,
        max_robots: int = 64,
    ) -> None:
        check_endpoint(endpoint, curve)
        self.max_robots = max_robots  # robot ids claimed at once: a flood of fresh ids cannot grow state
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.heartbeat_interval_s = heartbeat_interval_s or heartbeat_timeout_s / 4
        self.max_batch = max_batch
        self._peers: dict[str, _Peer] = {}
        self._newest: dict[str, Observation] = {}
        self._hellos: list[Hello] = []
        self._key_binding = curve if curve is not None and curve.robot_keys is not None else None
        # A small receive queue per robot: a robot sending faster than we drain is pushed back
        # (its own sends drop and count) instead of piling up stale observations here.
        super().__init__(zmq.ROUTER, limits, sndhwm=64, rcvhwm=16, source="inference bus")
        self.stats.update(dict.fromkeys(("observations", "dropped_stale", "unknown_robot", "unroutable"), 0))
        try:
            sock = self._socket()
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unroutable sends raise instead of vanishing
            if curve is not None:
                if curve.allowed_client_keys is not None:
                    self._auth = start_authenticator(self._ctx, curve.allowed_client_keys)
                curve.apply_server(sock)
            sock.bind(endpoint)
            self.endpoint: str = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except BaseException:
            self.close()
            raise

    # --- receiving ---------------------------------------------------------------------------
    def poll(self, timeout_ms: int = 0) -> int:
        """Wait up to ``timeout_ms`` for traffic, then handle everything waiting; returns valid messages.

        Also expires robots silent for longer than the heartbeat timeout and sends heartbeats
        to robots that have had nothing from us for a heartbeat interval. Never raises on bad input.
        """
        sock = self._socket()
        handled = 0
        if timeout_ms <= 0 or sock.poll(timeout_ms, zmq.POLLIN):
            for _ in range(self.max_batch):
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                handled += self._handle(frames, time.monotonic())
        self._housekeeping(time.monotonic())
        return handled

    def latest(self) -> dict[str, Observation]:
        """Pop the newest unserved observation of each robot."""
        newest, self._newest = self._newest, {}
        return newest

    def waiting(self) -> int:
        """How many robots have an observation waiting (not yet taken by :meth:`latest`)."""
        return len(self._newest)

    def hellos(self) -> list[Hello]:
        """Pop the Hellos received since the last call, in arrival order (bounded by the batch size)."""
        hellos, self._hellos = self._hellos, []
        return hellos

    def _handle(self, frames: list[zmq.Frame], now: float) -> int:
        identity = frames[0].bytes
        self.stats["received"] += 1
        if len(frames) != 2:
            self.rejects.reject(
                ProtocolError("message", "frames", f"{len(frames) - 1} frames"), identity.hex()
            )
            return 0
        try:
            msg = decode(frames[1].buffer, self.limits)
        except ProtocolError as err:
            self.rejects.reject(err, identity.hex())
            return 0
        robot = msg.robot_id
        if self._key_binding is not None and not self._key_binding.may_speak_for(robot, _user_id(frames[1])):
            self.rejects.reject(ProtocolError("robot_id", "wrong_key", f"{robot!r:.40}"), robot)
            self._send_to(identity, Error(robot, self._next_seq(), "wrong_key",
                                          "this client key may not speak for this robot (curve robot_keys)"))
            return 0
        if isinstance(msg, ActionChunk | Config):
            self.rejects.reject(ProtocolError("kind", "direction", f"{msg.KIND} sent to the server"), robot)
            return 0
        refused = self._route(robot, identity, _user_id(frames[1]), isinstance(msg, Hello), now)
        if refused:
            self.rejects.reject(ProtocolError("robot_id", refused, f"{robot!r:.40}"), identity.hex())
            self._send_to(identity, Error(robot, self._next_seq(), refused, OWNERSHIP_HINTS[refused]))
            return 0
        if isinstance(msg, Hello):
            self.stats["hellos"] += 1
            if len(self._hellos) < self.max_batch:
                self._hellos.append(msg)
        elif isinstance(msg, Observation):
            self.stats["observations"] += 1
            if robot in self._newest:
                self.stats["dropped_stale"] += 1
            self._newest[robot] = msg
        elif isinstance(msg, Heartbeat):
            self.stats["heartbeats_received"] += 1
        elif isinstance(msg, Error):
            self.stats["errors_received"] += 1
            log.warning("robot %s reports %s: %s", robot, msg.code, msg.message)
        return 1

    def _route(self, robot: str, identity: bytes, key: str | None, hello: bool, now: float) -> str:
        """Who may speak for ``robot``: "" if this connection may, else the refusal code.

        A robot id is owned by the connection whose Hello claimed it first. Another connection is
        refused (``id_taken``) while the owner is alive; it takes over with a Hello once the owner
        has been silent for ``heartbeat_timeout_s`` (the owner is then dropped), or at once when it
        holds the owner's CurveZMQ key. Until a Hello claims it, an id gets ``unknown_robot``.
        """
        peer = self._peers.get(robot)
        if peer is not None and now - peer.last_heard > self.heartbeat_timeout_s:
            self._drop(robot, peer, now)
            peer = None
        if peer is None:
            if not hello:
                return "unknown_robot"
            if len(self._peers) >= self.max_robots:
                return "too_many_robots"
            self._peers[robot] = _Peer(identity, now, now, key)
            self.stats["robots_joined"] += 1
            log.info("robot %s connected", robot)
            return ""
        if peer.identity != identity:
            if not (hello and key is not None and key == peer.key):
                return "id_taken"
            peer.identity = identity  # the same key from a new connection: the robot restarted
            self.stats["takeovers"] += 1
            log.info("robot %s reconnected (same key)", robot)
        peer.last_heard = now
        return ""

    def _drop(self, robot: str, peer: _Peer, now: float) -> None:
        del self._peers[robot]
        if self._newest.pop(robot, None) is not None:
            self.stats["dropped_stale"] += 1
        self.stats["robots_timed_out"] += 1
        log.warning("robot %s silent for %.1f s: dropped", robot, now - peer.last_heard)

    # --- sending -----------------------------------------------------------------------------
    def send(self, robot_id: str, msg: Message) -> bool:
        """Send ``msg`` to ``robot_id``'s current connection; False (and counted) if it cannot go or is invalid."""
        if msg.robot_id != robot_id:
            raise ValueError(f"message for robot {msg.robot_id!r} sent to robot {robot_id!r}")
        peer = self._peers.get(robot_id)
        if peer is None:
            self.stats["unknown_robot"] += 1
            return False
        result = self._send_to(peer.identity, msg)
        if result == "gone" and self._peers.get(robot_id) is peer:
            del self._peers[robot_id]  # its connection is closed; it must speak again to get mail
        if result != "sent":
            return False
        peer.last_sent = time.monotonic()
        return True

    def _send_to(self, identity: bytes, msg: Message) -> str:
        """``"sent"``, ``"full"`` (send queue at its limit), ``"gone"`` (no such connection), ``"invalid"``."""
        data = self._encode(msg)
        if data is None:
            return "invalid"
        try:
            self._socket().send_multipart([identity, data], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.stats["send_dropped"] += 1
            return "full"
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self.stats["unroutable"] += 1
            return "gone"
        self.stats["sent"] += 1
        if isinstance(msg, Heartbeat):
            self.stats["heartbeats_sent"] += 1
        return "sent"

    def _housekeeping(self, now: float) -> None:
        for robot, peer in list(self._peers.items()):
            if now - peer.last_heard > self.heartbeat_timeout_s:
                self._drop(robot, peer, now)
            elif now - peer.last_sent >= self.heartbeat_interval_s:
                self.send(robot, Heartbeat(robot, self._next_seq(), time.time()))

    # --- state -------------------------------------------------------------------------------
    def robots(self) -> list[str]:
        """Robots heard from within the heartbeat timeout, sorted."""
        now = time.monotonic()
        return sorted(r for r, p in self._peers.items() if now - p.last_heard <= self.heartbeat_timeout_s)

    def seconds_since_heard(self, robot_id: str) -> float:
        """Seconds since ``robot_id`` last sent anything valid (inf if unknown or timed out)."""
        peer = self._peers.get(robot_id)
        return float("inf") if peer is None else time.monotonic() - peer.last_heard


class ControlEndpoint(_Endpoint):
    """The control side: a DEALER that connects to the inference endpoint and never blocks.

    Up to ``send_queue`` messages wait for a missing or slow server (so a Hello sent before the
    connection is up still arrives); beyond that ``send`` drops and counts instead of waiting.
    ``jpeg_quality`` compresses camera images for off-host links.
    """

    def __init__(
        self,
        endpoint: str,
        robot_id: str,
        *,
        curve: CurveConfig | None = None,
        heartbeat_timeout_s: float = 2.0,
        heartbeat_interval_s: float | None = None,
        limits: Limits = DEFAULT_LIMITS,
        jpeg_quality: int | None = None,
        send_queue: int = 4,
        max_batch: int = 256,
    ) -> None:
        check_endpoint(endpoint, curve)
        if not isinstance(robot_id, str) or not 0 < len(robot_id) <= limits.max_id_len:
            raise ValueError(f"robot_id must be a non-empty string of at most {limits.max_id_len} characters")
        self.endpoint, self.robot_id = endpoint, robot_id
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.heartbeat_interval_s = heartbeat_interval_s or heartbeat_timeout_s / 4
        self.jpeg_quality, self.max_batch = jpeg_quality, max_batch
        self._last_heard: float | None = None
        self._last_sent = float("-inf")
        super().__init__(zmq.DEALER, limits, sndhwm=send_queue, rcvhwm=64, source=f"control bus {robot_id}")
        try:
            sock = self._socket()
            # a fixed routing id per process: after a TCP reconnect the server still sees the owner
            sock.setsockopt(zmq.ROUTING_ID, b"r" + os.urandom(15))
            sock.setsockopt(zmq.RECONNECT_IVL, 100)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
            if curve is not None:
                curve.apply_client(sock)
            sock.connect(endpoint)
        except BaseException:
            self.close()
            raise

    def send(self, msg: Message) -> bool:
        """Queue ``msg`` without blocking; False if it cannot go now (``send_dropped``) or is invalid."""
        if msg.robot_id != self.robot_id:
            raise ValueError(f"message for robot {msg.robot_id!r} sent from robot {self.robot_id!r}")
        data = self._encode(msg, self.jpeg_quality)
        if data is None:
            return False
        try:
            self._socket().send(data, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.stats["send_dropped"] += 1
            return False
        self.stats["sent"] += 1
        self._last_sent = time.monotonic()
        return True

    def poll(self, timeout_ms: int = 0) -> list[Message]:
        """Valid messages waiting, up to ``max_batch`` (heartbeats included); bad ones are counted.

        Never raises on bad input and, with the default ``timeout_ms=0``, never waits.
        """
        sock = self._socket()
        out: list[Message] = []
        if timeout_ms > 0 and not sock.poll(timeout_ms, zmq.POLLIN):
            return out
        for _ in range(self.max_batch):
            try:
                frame = sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.stats["received"] += 1
            if frame.more:  # the server sends one frame per message; discard the rest
                while sock.getsockopt(zmq.RCVMORE):
                    sock.recv(zmq.NOBLOCK, copy=False)
                self.rejects.reject(ProtocolError("message", "frames", "multipart message"))
                continue
            try:
                msg = decode(frame.buffer, self.limits)
            except ProtocolError as err:
                self.rejects.reject(err)
                continue
            if msg.robot_id != self.robot_id:
                self.rejects.reject(ProtocolError("robot_id", "wrong_robot", f"{msg.robot_id!r:.40}"))
                continue
            if isinstance(msg, Observation | Hello):
                self.rejects.reject(ProtocolError("kind", "direction", f"{msg.KIND} sent to a robot"))
                continue
            self._last_heard = time.monotonic()
            if isinstance(msg, Heartbeat):
                self.stats["heartbeats_received"] += 1
            out.append(msg)
        return out

    def maybe_heartbeat(self, now: float | None = None) -> bool:
        """Send a Heartbeat if nothing was sent for a heartbeat interval (``now``: time.monotonic())."""
        now = time.monotonic() if now is None else now
        if now - self._last_sent < self.heartbeat_interval_s:
            return False
        sent = self.send(Heartbeat(self.robot_id, self._next_seq(), time.time()))
        self._last_sent = now  # also after a drop: retry next interval, not every tick
        if sent:
            self.stats["heartbeats_sent"] += 1
        return sent

    def seconds_since_heard(self, now: float | None = None) -> float:
        """Seconds since the server last sent anything valid (inf before the first message)."""
        if self._last_heard is None:
            return float("inf")
        return (time.monotonic() if now is None else now) - self._last_heard

    @property
    def server_alive(self) -> bool:
        """Whether the server was heard from within the heartbeat timeout."""
        return self.seconds_since_heard() <= self.heartbeat_timeout_s
