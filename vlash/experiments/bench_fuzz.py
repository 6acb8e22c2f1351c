"""``vlash bench fuzz``: fuzz the wire decoder in process, then a live ``vlash serve`` endpoint.

Inputs come from :class:`vlash.experiments.fuzzing.Generator` (seeded, structure-aware,
outcome-guided). Properties, per input: :func:`~vlash.messages.decode` returns a message or
raises :class:`~vlash.messages.ProtocolError` (anything else is a crash), within ``--hang-s``
(else a hang); an accepted message re-encodes and decodes again. Against the live endpoint:
the server process survives, keeps answering a probe robot, and counts every rejection by reason.
Then the live-abuse phases (:mod:`vlash.experiments.bench_abuse`) attack a served robot.
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

import numpy as np

from vlash.experiments.fuzzing import Generator, fuzz_decoder
from vlash.messages import ActionChunk, Config, Hello, Observation, ProtocolError, decode, encode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", type=int, default=100_000, help="decoder inputs (default 100000)")
    parser.add_argument("--endpoint-inputs", type=int, default=None,
                        help="inputs sent to a live `vlash serve` (default: as many as --inputs; 0 skips)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated inputs")
    parser.add_argument("--hang-s", type=float, default=2.0, help="an input taking longer than this is a hang")
    parser.add_argument("--abuse-s", type=float, default=5.0,
                        help="seconds per live-abuse phase against a served robot (0 skips them)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for fuzz.json")


class ZeroPolicy:
    """A model-free policy for the live endpoint: a chunk of zeros, instantly."""

    action_kind = "absolute"
    supports_rtc = False

    def __init__(self, chunk_size: int = 8, action_dim: int = 2) -> None:
        from vlash.contracts import PolicyFeatures

        self.chunk_size = chunk_size
        self.features = PolicyFeatures(state_dim=action_dim, action_dim=action_dim)

    @staticmethod
    def robot_features(action_dim: int = 2) -> dict[str, Any]:
        """The features a robot announces in its Hello to be served by this policy."""
        names = [f"joint{i}" for i in range(action_dim)]
        return {"joint_names": names, "action_names": names, "action_kind": "absolute"}

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation) -> np.ndarray:
        return np.zeros((self.chunk_size, self.features.action_dim), np.float32)


def _serve(endpoint: str, folder: Path):
    """A real ``vlash serve`` process with :class:`ZeroPolicy` on ``endpoint``; stderr to a file."""
    import subprocess

    import yaml

    launch = folder / "fuzz.yaml"
    launch.write_text(yaml.safe_dump({
        "name": "fuzz", "fps": 30, "endpoint": endpoint,
        "inference": {"policy": {"factory": "vlash.experiments.bench_fuzz:ZeroPolicy"}},
        "robots": [{"id": "probe", "driver": {"factory": "vlash.experiments.bench_fuzz:ZeroPolicy"}}],
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
        probe.send(Hello("probe", 0, features=ZeroPolicy.robot_features(), fps=30.0))
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
    if args.inputs < 0 or (args.endpoint_inputs is not None and args.endpoint_inputs < 0) or args.hang_s <= 0 \
            or args.abuse_s < 0:
        print("vlash bench fuzz: --inputs, --endpoint-inputs and --abuse-s must be >= 0, --hang-s > 0", file=sys.stderr)
        return 2
    endpoint_inputs = args.inputs if args.endpoint_inputs is None else args.endpoint_inputs
    result: dict[str, Any] = {"seed": args.seed, "decoder": fuzz_decoder(args.inputs, args.seed, args.hang_s)}
    if endpoint_inputs:
        result["endpoint"] = fuzz_endpoint(endpoint_inputs, args.seed + 1, args.hang_s, args.out / "fuzz-serve")
    if args.abuse_s:
        from vlash.experiments.bench_abuse import run_abuse

        result["abuse"] = run_abuse(args.out / "fuzz-abuse", phase_s=args.abuse_s)
    d, e = result["decoder"], result.get("endpoint", {})
    result["ok"] = bool(d["crashes"] == 0 and d["hangs"] == 0 and e.get("ok", True)
                        and result.get("abuse", {}).get("ok", True))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "fuzz.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0 if result["ok"] else 1
