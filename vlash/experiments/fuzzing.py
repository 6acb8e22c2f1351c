"""Seeded, structure-aware fuzz inputs for the wire decoder, and the in-process fuzz loop.

:class:`Generator` makes well-formed messages of every kind, byte mutations of them (bit
flips, msgpack headers claiming huge sizes, truncation, splices), tree mutations of their
decoded msgpack (wrong types, huge shapes, NaN, unknown keys, deep nesting) and plain random
bytes. It is outcome-guided: an input whose outcome (accepted kind, or rejection reason and
field) was not seen before joins the corpus that later inputs mutate. :func:`fuzz_decoder`
runs inputs through :func:`~vlash.messages.decode` and counts the outcomes.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from typing import Any

import msgpack
import numpy as np

from vlash.messages import (
    ActionChunk,
    Config,
    Error,
    Heartbeat,
    Hello,
    Message,
    Observation,
    ProtocolError,
    decode,
    encode,
)

INTERESTING_BYTES = [0x00, 0x7F, 0x80, 0xC0, 0xC1, 0xC2, 0xCA, 0xCB, 0xCF, 0xD3, 0xFF]
HUGE_HEADERS = [b"\xc6\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff",
                b"\xc5\xff\xff", b"\xda\xff\xff", b"\xdc\xff\xff", b"\xde\xff\xff", b"\xc7\x05\x01"]
INTERESTING_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 255, 2**31, 2**63 - 1, 2**64 - 1, -(2**63), 1e308, -1e308, float("inf"),
    float("nan"), 0.5, "", "x" * 5000, "\x00\ud7ff", b"", b"\x00" * 64, [], {}, [[[[[[[[[[1]]]]]]]]]],
    {"dtype": "object", "shape": [1], "data": b"\x00" * 8}, {"dtype": "<f4", "shape": [-1], "data": b""},
    {"dtype": "float32", "shape": [1 << 40], "data": b""}, {"dtype": "float64", "shape": [2, 2], "data": b"\x00" * 3},
    {"codec": "jpeg", "dtype": "uint8", "shape": [4000, 4000, 3], "data": b"\xff\xd8\xff"},
]  # fmt: skip



class Generator:
    """Seeded, structure-aware, outcome-guided inputs."""

    def __init__(self, seed: int, max_corpus: int = 2000) -> None:
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.corpus: list[bytes] = [self.valid()[1] for _ in range(64)]
        self.max_corpus = max_corpus
        self.seen: set[tuple] = set()

    def _array(self, *shape: int) -> np.ndarray:
        return self.np_rng.normal(0, 1, shape).astype(np.float32)

    def message(self) -> Message:
        r, n = self.rng, self.rng.randrange(1, 8)
        rid = r.choice(["arm", "so101", "r" * r.randrange(1, 65), f"robot{r.randrange(1 << 30)}"])
        kind = r.randrange(6)
        if kind == 0:
            images = {f"cam{i}": self.np_rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for i in range(r.randrange(3))}
            return Observation(
                robot_id=rid, seq=r.randrange(1 << 20), step=r.randrange(1 << 20), wall_time=time.time(),
                state=self._array(n), images=images, task="task", plan_start_step=r.randrange(100),
                plan=self._array(r.randrange(4), n), hold=self._array(r.choice([0, n])),
                extras={"velocity": self._array(n)} if r.random() < 0.5 else {}, last_rtt_ms=r.choice([-1.0, 12.5]),
            )
        if kind == 1:
            return ActionChunk(
                robot_id=rid, seq=r.randrange(100), chunk_id=r.randrange(100), obs_seq=r.randrange(100),
                obs_step=r.randrange(100), start_step=r.randrange(100), actions=self._array(r.randrange(1, 20), n),
                mode="vlash", delay_steps=2, estimator="target", model_ms=1.0, queue_ms=0.1, server_ms=0.2,
            )
        if kind == 2:
            features = {"joint_names": ["a"] * n, "action_names": ["a"] * n, "cameras": {"front": [8, 8]},
                        "action_kind": "absolute", "action_low": [-1.0] * n, "action_high": [1.0] * n}
            return Hello(robot_id=rid, seq=0, features=features, fps=30.0, mode=r.choice(["vlash", "sync"]),
                         chunk_settings={"chunk_size": 8})
        if kind == 3:
            return Config(robot_id=rid, seq=1, accepted=True, policy={"chunk_size": 8, "cameras": {}}, reason="")
        if kind == 4:
            return Heartbeat(robot_id=rid, seq=r.randrange(1000), wall_time=time.time())
        return Error(robot_id=rid, seq=1, code="policy_error", message="boom")

    def valid(self) -> tuple[str, bytes]:
        msg = self.message()
        jpeg = self.rng.choice([None, None, 80]) if isinstance(msg, Observation) and msg.images else None
        return "valid", encode(msg, jpeg_quality=jpeg)

    def mutate_bytes(self, data: bytes) -> bytes:
        buf = bytearray(data)
        for _ in range(self.rng.randrange(1, 5)):
            op = self.rng.randrange(7)
            at = self.rng.randrange(len(buf) + 1)
            if op == 0 and buf:
                buf[min(at, len(buf) - 1)] ^= 1 << self.rng.randrange(8)
            elif op == 1 and buf:
                buf[min(at, len(buf) - 1)] = self.rng.choice(INTERESTING_BYTES)
            elif op == 2:
                buf[at:at] = self.rng.randbytes(self.rng.randrange(1, 16))
            elif op == 3:
                del buf[at : at + self.rng.randrange(1, 32)]
            elif op == 4:
                buf[at:at] = buf[at : at + self.rng.randrange(1, 64)]
            elif op == 5:
                buf[at : at + 5] = self.rng.choice(HUGE_HEADERS)
            else:
                del buf[at:]
        return bytes(buf)

    def mutate_tree(self, data: bytes) -> bytes:
        try:
            obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception:
            return self.mutate_bytes(data)
        nodes: list[tuple[Any, Any]] = []  # (container, key)
        stack = [obj]
        while stack:
            node = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, value in items:
                nodes.append((node, key))
                stack.append(value)
        if nodes:
            container, key = self.rng.choice(nodes)
            op = self.rng.randrange(4)
            if op == 0 and isinstance(container, dict):
                del container[key]
            elif op == 1 and isinstance(container, dict):
                container[self.rng.choice(["extra", "__class__", 1, ""])] = self.rng.choice(INTERESTING_VALUES)
            else:
                container[key] = self.rng.choice(INTERESTING_VALUES)
        try:
            return msgpack.packb(obj)
        except Exception:
            return self.mutate_bytes(data)

    def next(self) -> tuple[str, bytes]:
        p = self.rng.random()
        if p < 0.10:
            return self.valid()
        if p < 0.20:
            return "bytes", self.rng.randbytes(self.rng.randrange(0, 300))
        if p < 0.60:
            return "mutate", self.mutate_bytes(self.rng.choice(self.corpus))
        if p < 0.95:
            return "tree", self.mutate_tree(self.rng.choice(self.corpus))
        a, b = self.rng.choice(self.corpus), self.rng.choice(self.corpus)
        return "splice", a[: self.rng.randrange(len(a) + 1)] + b[self.rng.randrange(len(b) + 1) :]

    def feedback(self, data: bytes, outcome: tuple) -> None:
        """Keep inputs with an outcome not seen before as seeds for later mutation."""
        if outcome not in self.seen:
            self.seen.add(outcome)
            if len(self.corpus) < self.max_corpus:
                self.corpus.append(data)


class Hang(Exception):
    """Raised by SIGALRM in the input that took longer than ``--hang-s``."""

    @staticmethod
    def on_alarm(signum, frame):
        raise Hang()


def fuzz_decoder(n: int, seed: int, hang_s: float) -> dict[str, Any]:
    """Run ``n`` inputs through ``decode`` (and accepted ones through encode/decode again)."""
    gen = Generator(seed)
    reasons: Counter[str] = Counter()
    strategies: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    crashes: list[str] = []
    internal: list[str] = []
    hangs = reencode_failures = 0
    slowest = 0.0
    previous = signal.signal(signal.SIGALRM, Hang.on_alarm)
    started = time.perf_counter()
    try:
        for _ in range(n):
            strategy, data = gen.next()
            strategies[strategy] += 1
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, hang_s)
            try:
                msg = decode(data)
                outcome: tuple = ("ok", msg.KIND)
                accepted[msg.KIND] += 1
                try:
                    decode(encode(msg))
                except ProtocolError:
                    reencode_failures += 1
            except ProtocolError as err:
                reasons[err.reason] += 1
                outcome = (err.reason, str(err.field).split(".")[0])
                if err.reason == "internal" and len(internal) < 10:  # a validator bug the decoder contained
                    internal.append(f"{err}"[:200] + f" input={data[:64].hex()}")
            except Hang:
                hangs += 1
                outcome = ("hang",)
            except Exception as exc:  # the property under test: nothing else may escape
                crashes.append(f"{type(exc).__name__}: {exc}"[:200] + f" input={data[:64].hex()}")
                outcome = ("crash", type(exc).__name__)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            slowest = max(slowest, time.perf_counter() - t0)
            gen.feedback(data, outcome)
    finally:
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - started
    return {
        "inputs": n,
        "accepted": sum(accepted.values()),
        "accepted_by_kind": dict(sorted(accepted.items())),
        "rejected": sum(reasons.values()),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "by_strategy": dict(sorted(strategies.items())),
        "crashes": len(crashes),
        "crash_samples": crashes[:10],
        "hangs": hangs,
        "internal_errors": reasons.get("internal", 0),  # contained, but each one is a validator bug
        "internal_samples": internal,
        "reencode_failures": reencode_failures,
        "distinct_outcomes": len(gen.seen),
        "corpus": len(gen.corpus),
        "max_input_ms": round(slowest * 1000, 3),
        "seconds": round(elapsed, 2),
        "inputs_per_s": round(n / elapsed) if elapsed > 0 else None,
    }
