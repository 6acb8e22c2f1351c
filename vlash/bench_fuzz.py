"""``vlash bench fuzz``: fuzz the wire decoder in process, then a live ``vlash serve`` endpoint.

Inputs come from a seeded, structure-aware generator: well-formed messages of every kind, byte
mutations of them (bit flips, msgpack headers claiming huge sizes, truncation, splices), tree
mutations of their decoded msgpack (wrong types, huge shapes, NaN, unknown keys, deep nesting)
and plain random bytes. It is outcome-guided: an input whose outcome (accepted kind, or
rejection reason and field) was not seen before joins the corpus that later inputs mutate.

Properties, per input: :func:`~vlash.messages.decode` returns a message or raises
:class:`~vlash.messages.ProtocolError` (anything else is a crash), within ``--hang-s`` (else a
hang); an accepted message re-encodes and decodes again. Against the live endpoint: the server
process survives, keeps answering a probe robot, and counts every rejection by reason.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", type=int, default=100_000, help="decoder inputs (default 100000)")
    parser.add_argument("--endpoint-inputs", type=int, default=None,
                        help="inputs sent to a live `vlash serve` (default: as many as --inputs; 0 skips)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-s", type=float, default=2.0, help="an input taking longer than this is a hang")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for fuzz.json")


class ZeroPolicy:
    """A model-free policy for the live endpoint: a chunk of zeros, instantly."""

    action_kind = "absolute"
    supports_rtc = False

    def __init__(self, chunk_size: int = 8, action_dim: int = 2) -> None:
        from policies.interface import PolicyFeatures

        self.chunk_size = chunk_size
        self.features = PolicyFeatures(state_dim=action_dim, action_dim=action_dim)

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation) -> np.ndarray:
        return np.zeros((self.chunk_size, self.features.action_dim), np.float32)


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
            return Observation(rid, r.randrange(1 << 20), r.randrange(1 << 20), time.time(), self._array(n),
                               images, "task", r.randrange(100), self._array(r.randrange(4), n),
                               {"velocity": self._array(n)} if r.random() < 0.5 else {}, r.choice([-1.0, 12.5]))
        if kind == 1:
            return ActionChunk(rid, r.randrange(100), r.randrange(100), r.randrange(100), r.randrange(100),
                               r.randrange(100), self._array(r.randrange(1, 20), n), "vlash", 2, "target", 1.0, 0.1, 0.2)
        if kind == 2:
            features = {"joint_names": ["a"] * n, "action_names": ["a"] * n, "cameras": {"front": [8, 8]},
                        "action_kind": "absolute", "action_low": [-1.0] * n, "action_high": [1.0] * n}
            return Hello(rid, 0, features, 30.0, r.choice(["vlash", "sync"]), {"chunk_size": 8})
        if kind == 3:
            return Config(rid, 1, True, {"chunk_size": 8, "cameras": {}}, "")
        if kind == 4:
            return Heartbeat(rid, r.randrange(1000), time.time())
        return Error(rid, 1, "policy_error", "boom")

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


def _serve(endpoint: str, folder: Path):
    """A real ``vlash serve`` process with :class:`ZeroPolicy` on ``endpoint``; stderr to a file."""
    import subprocess

    import yaml

    launch = folder / "fuzz.yaml"
    launch.write_text(yaml.safe_dump({
        "name": "fuzz", "fps": 30, "endpoint": endpoint,
        "inference": {"policy": {"factory": "vlash.bench_fuzz:ZeroPolicy"}},
        "robots": [{"id": "probe", "driver": {"factory": "vlash.bench_fuzz:ZeroPolicy"}}],
    }))  # fmt: skip
    with open(folder / "serve.log", "w") as err:
        argv = [sys.executable, "-m", "vlash.cli", "serve", str(launch)]
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait_for(bus, kind: type, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if any(isinstance(m, kind) for m in bus.poll(50)):
            return True
    return False


def fuzz_endpoint(n: int, seed: int, hang_s: float, folder: Path, probe_every: int = 500) -> dict[str, Any]:
    """Send ``n`` generated inputs to a live ``vlash serve`` while a probe robot asks for chunks.

    The server's launch file and log go to ``folder``.
    """
    import ast
    import re

    import zmq

    from vlash.bus import ControlEndpoint
    from vlash.launchfile import free_port

    gen, rng = Generator(seed), random.Random(seed)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    stats: Counter[str] = Counter()
    folder.mkdir(parents=True, exist_ok=True)
    server = _serve(endpoint, folder)
    probe = ControlEndpoint(endpoint, "probe")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDTIMEO, int(hang_s * 1000))
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        probe.send(Hello("probe", 0, fps=30.0))
        if not _wait_for(probe, Config, 60.0):
            raise RuntimeError(f"vlash serve did not answer: {(folder / 'serve.log').read_text()[-2000:]}")
        rss_start = rss_warm = _rss_mb(server.pid)
        started = time.perf_counter()
        for i in range(n):
            if server.poll() is not None:
                break
            _, data = gen.next()
            try:
                gen.feedback(data, ("ok", decode(data).KIND))
            except ProtocolError as err:
                gen.feedback(data, (err.reason, str(err.field).split(".")[0]))
            frames = [data, gen.next()[1]] if rng.random() < 0.02 else [data]
            try:
                sock.send_multipart(frames)
                stats["inputs"] += 1
            except zmq.Again:  # the server stopped draining its socket
                stats["send_timeouts"] += 1
                break
            while sock.poll(0):  # answers to valid inputs (errors, configs, chunks): drop them
                sock.recv_multipart()
                stats["answers_to_fuzzer"] += 1
            if i == n // 10:  # after warm-up (lazy imports such as the JPEG codec, allocator pools)
                rss_warm = _rss_mb(server.pid)
            if i % probe_every == 0:
                probe.send(Observation("probe", i + 1, i + 1, time.time(), np.zeros(2, np.float32)))
                stats["probe_answers" if _wait_for(probe, ActionChunk, hang_s) else "probe_misses"] += 1
        elapsed = time.perf_counter() - started
        # barrier: once a Hello on this connection is answered, every earlier input was handled
        sock.send(encode(Hello("fuzz-barrier", 0)))
        end = time.monotonic() + 10 * hang_s
        while time.monotonic() < end and sock.poll(100):
            with contextlib.suppress(ProtocolError):
                if isinstance(decode(sock.recv_multipart()[-1]), Config):
                    stats["barrier"] += 1
                    break
        rss_end = _rss_mb(server.pid)
    finally:
        sock.close()
        ctx.term()
        probe.close()
        alive = server.poll() is None
        if alive:
            server.send_signal(signal.SIGINT)
        try:
            code = server.wait(20)
        except Exception:
            server.kill()
            code = server.wait()
    log = (folder / "serve.log").read_text(errors="replace")
    match = re.search(r"counters (\{.*?\}) bus (\{.*\})", log)
    served, bus = (ast.literal_eval(match.group(1)), ast.literal_eval(match.group(2))) if match else ({}, {})
    return {
        "inputs": stats["inputs"],
        "server_rejected": bus.get("rejected"),
        "server_rejected_by_reason": {k[9:]: v for k, v in bus.items() if k.startswith("rejected_")},
        "server_hellos": bus.get("hellos"),
        "server_observations": bus.get("observations"),
        "server_chunks_sent": served.get("chunks_sent"),
        "server_policy_errors": served.get("policy_errors", 0),
        "answers_to_fuzzer": stats["answers_to_fuzzer"],
        "probe_answers": stats["probe_answers"],
        "probe_misses": stats["probe_misses"],
        "send_timeouts": stats["send_timeouts"],
        "server_alive_at_end": alive,
        "server_exit_code": code,
        "server_rss_start_mb": round(rss_start, 1),
        "server_rss_warm_mb": round(rss_warm, 1),
        "server_rss_end_mb": round(rss_end, 1),
        "server_rss_growth_mb": round(rss_end - rss_warm, 1),  # after the first 10 % of inputs
        "seconds": round(elapsed, 2),
        "inputs_per_s": round(stats["inputs"] / elapsed) if elapsed > 0 else None,
        "server_received": bus.get("received", 0),
        # how many inputs reach the server varies: libzmq drops a connection whose frame claims more
        # than MAXMSGSIZE together with the messages queued behind it. "ok" is about the server: alive,
        # clean exit, every probe answered, no send ever stuck.
        "ok": bool(alive and code == 0 and stats["probe_misses"] == 0 and stats["send_timeouts"] == 0
                   and stats["barrier"] == 1 and bus.get("received", 0) > 0),
    }


def run(args: argparse.Namespace) -> int:
    if args.inputs < 0 or (args.endpoint_inputs is not None and args.endpoint_inputs < 0) or args.hang_s <= 0:
        print("vlash bench fuzz: --inputs and --endpoint-inputs must be >= 0, --hang-s > 0", file=sys.stderr)
        return 2
    endpoint_inputs = args.inputs if args.endpoint_inputs is None else args.endpoint_inputs
    result: dict[str, Any] = {"seed": args.seed, "decoder": fuzz_decoder(args.inputs, args.seed, args.hang_s)}
    if endpoint_inputs:
        result["endpoint"] = fuzz_endpoint(endpoint_inputs, args.seed + 1, args.hang_s, args.out / "fuzz-serve")
    d, e = result["decoder"], result.get("endpoint", {})
    result["ok"] = bool(d["crashes"] == 0 and d["hangs"] == 0 and e.get("ok", True))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "fuzz.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0 if result["ok"] else 1
