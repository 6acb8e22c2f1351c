"""``vlash bench serve``: one inference process serving 1, 2, 4, 8 robots, batched against one call per robot.

A real :class:`~vlash.inference.InferenceServer` runs in a spawned process behind a real
:class:`~vlash.bus.InferenceEndpoint` (loopback TCP, and ``ipc://`` where asked); this process
plays N robots, each a :class:`~vlash.bus.ControlEndpoint` that says Hello and then sends its next
observation (two 224x224 cameras, a 6-dim state) as soon as the chunk answering the last one
arrives: closed loop, so robots waiting together are what batching can join. Per robot count it
reports chunk latency p50/p99 (send to chunk decoded), chunks per second, the mean batch size,
and the overhead beyond the model (latency minus the server's own ``model_ms`` of that chunk).

Policies: a local LeRobot ACT checkpoint (``--checkpoint``, or a small random one written here
with exactly those cameras and a 50-step chunk), and a latency-emulating policy that costs
``--emulated-ms`` plus ``--per-item-ms`` per extra batch item (a GPU-like cost model). The bare
bus round trip (``vlash bench transport``) is measured in the same run as the floor.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vlash.contracts import PolicyFeatures
from vlash.experiments.bench_transport import IMAGE_SHAPE, STATE_DIM, test_images

CHUNK_LEN = 50
WARMUP_REQUESTS = 5  # per robot, untimed
TARGET_OVERHEAD_MS = 0.5  # issue #17: overhead beyond the model, p50, loopback, two 224² cameras
TARGET_BATCH_RATIO = 1.5  # per-robot latency with 4 robots (batched) / with 1
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
CAMERAS = {"front": IMAGE_SHAPE[:2], "wrist": IMAGE_SHAPE[:2]}


def _csv(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robots", type=_csv(int), default=[1, 2, 4, 8], help="robot counts (default: 1,2,4,8)")
    parser.add_argument("--policies", type=_csv(str), default=["act", "emulated"],
                        help="act and/or emulated (default: act,emulated)")
    parser.add_argument("--transports", type=_csv(str), default=["tcp", "ipc"],
                        help="tcp (loopback) and/or ipc (default: tcp,ipc)")
    parser.add_argument("--requests", type=int, default=40, help="timed chunks per robot and cell (default: %(default)s)")
    parser.add_argument("--checkpoint", help="an ACT checkpoint with cameras front and wrist (default: a small random one)")
    parser.add_argument("--emulated-ms", type=float, default=50.0, help="emulated cost of a call (default: %(default)s)")
    parser.add_argument("--per-item-ms", type=float, default=5.0,
                        help="emulated cost of each extra batch item (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for serve.json/.md/.png")


def run(args: argparse.Namespace) -> int:
    problems = [
        "--robots must be >= 1" if not args.robots or min(args.robots) < 1 else "",
        "--policies are act and/or emulated" if not args.policies or set(args.policies) - {"act", "emulated"} else "",
        "--transports are tcp and/or ipc" if not args.transports or set(args.transports) - {"tcp", "ipc"} else "",
        "--requests must be >= 1" if args.requests < 1 else "",
        "--emulated-ms and --per-item-ms must be >= 0" if min(args.emulated_ms, args.per_item_ms) < 0 else "",
        f"--checkpoint {args.checkpoint}: no such folder" if args.checkpoint and not Path(args.checkpoint).is_dir() else "",
    ]
    if any(problems):
        print(f"vlash bench serve: {next(p for p in problems if p)}", file=sys.stderr)
        return 2
    from vlash.experiments.bench_transport import measure

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vlash-bench-serve-") as scratch:
        checkpoint = args.checkpoint or _small_act(Path(scratch) / "act")
        floor = measure(500, 100)
        result: dict[str, Any] = {
            "robots": args.robots, "requests_per_robot": args.requests, "checkpoint": str(args.checkpoint or "small random ACT"),
            "emulated_ms": args.emulated_ms, "per_item_ms": args.per_item_ms,
            "bus_rtt_ms_p50": floor["rtt_ms_p50"], "machine": floor["machine"], "cells": [], "floors": [],
        }
        for policy in args.policies:
            for transport in args.transports:
                for batching in (True, False):
                    endpoint = f"ipc://{scratch}/bus-{policy}-{batching}.sock" if transport == "ipc" else "tcp://127.0.0.1:*"
                    spec = {"policy": policy, "checkpoint": str(checkpoint), "endpoint": endpoint, "batching": batching,
                            "emulated_ms": args.emulated_ms, "per_item_ms": args.per_item_ms}
                    for cell in _serve_cells(spec, args.robots, args.requests):
                        cell.update(policy=policy, transport=transport, batching=batching)
                        result["cells"].append(cell)
                        print(_line(cell), flush=True)
                # the floor for this policy and transport: the bare bus, idle for the model's time between trips
                one = _cell(result, policy, transport, True, min(args.robots))
                ipc = f"ipc://{scratch}/floor.sock" if transport == "ipc" else "tcp://127.0.0.1:*"
                idle = measure(max(args.requests * 2, 50), 10, gap_s=one["model_ms_p50"] / 1000.0, endpoint=ipc)
                result["floors"].append({"policy": policy, "transport": transport, "gap_ms": one["model_ms_p50"],
                                         "bus_rtt_ms_p50": idle["rtt_ms_p50"]})
                print(f"{policy:<8} {transport} bare bus after a {one['model_ms_p50']:.0f} ms gap: "
                      f"{idle['rtt_ms_p50']:.3f} ms p50", flush=True)
    result["seconds"] = time.monotonic() - started
    result["verdicts"] = verdicts(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "serve.md").write_text(markdown(result))
    plot(result, args.out / "serve.png")
    print(markdown(result))
    print(f"wrote {args.out / 'serve.json'}, serve.md, serve.png")
    return 0


def _small_act(folder: Path) -> Path:
    from policies.testing import make_tiny_act_checkpoint

    return make_tiny_act_checkpoint(folder, env_state_dim=None, chunk_size=CHUNK_LEN, cameras=dict(CAMERAS))


class StillPolicy:
    """Zeros with the ACT checkpoint's shapes: the emulated policy's inner model (its cost is all emulated)."""

    features = PolicyFeatures(STATE_DIM, STATE_DIM, cameras=dict(CAMERAS))
    chunk_size, action_kind, supports_rtc = CHUNK_LEN, "absolute", False

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation) -> np.ndarray:
        return np.zeros((CHUNK_LEN, STATE_DIM), np.float32)

    def predict_batch(self, observations) -> list[np.ndarray]:
        return [self.predict_chunk(o) for o in observations]


def _build_policy(spec: dict[str, Any]):
    if spec["policy"] == "emulated":
        from policies.latency import LatencyEmulation

        return LatencyEmulation(StillPolicy(), spec["emulated_ms"], per_item_ms=spec["per_item_ms"])
    from policies.lerobot_adapter import load_policy

    policy = load_policy(spec["checkpoint"])
    policy.warmup(3)
    return policy


def _server(conn: Any, spec: dict[str, Any]) -> None:
    """The inference process: serve until told to stop; answer "counters" with the server's counters."""
    from vlash.bus import InferenceEndpoint
    from vlash.heap import freeze_startup_heap
    from vlash.inference import InferenceServer, ServerConfig

    policy = _build_policy(spec)
    with InferenceEndpoint(spec["endpoint"], heartbeat_timeout_s=30.0) as bus:
        server = InferenceServer(bus, policy, ServerConfig(mode="vlash", batching=spec["batching"]))
        freeze_startup_heap()
        conn.send(bus.endpoint)
        while True:
            server.step(timeout_ms=20)
            if conn.poll():
                if conn.recv() != "counters":
                    break
                conn.send(dict(server.counters))


def _serve_cells(spec: dict[str, Any], robot_counts: list[int], requests: int) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_server, args=(child, spec), name="vlash-bench-serve", daemon=True)
    server.start()
    try:
        if not parent.poll(180):
            raise RuntimeError(f"the benchmark's inference process did not start (exit code {server.exitcode})")
        endpoint = parent.recv()
        cells = []
        for n in robot_counts:
            before = _counters(parent)
            cell = _drive(endpoint, n, requests, prefix=f"n{n}")
            after = _counters(parent)
            batches = after.get("batches", 0) - before.get("batches", 0)
            batched = after.get("batched_requests", 0) - before.get("batched_requests", 0)
            calls = (after.get("chunks_sent", 0) - before.get("chunks_sent", 0)) - batched + batches
            cell["mean_batch"] = (after.get("chunks_sent", 0) - before.get("chunks_sent", 0)) / max(calls, 1)
            cells.append(cell)
        parent.send("stop")
        return cells
    finally:
        server.join(10)
        if server.is_alive():
            server.terminate()
            server.join(5)


def _counters(conn: Any) -> dict[str, int]:
    conn.send("counters")
    if not conn.poll(60):
        raise RuntimeError("the benchmark's inference process stopped answering")
    return conn.recv()


def _drive(endpoint: str, n: int, requests: int, prefix: str) -> dict[str, Any]:
    """N robots in closed loop against ``endpoint``; returns the cell's figures."""
    import zmq

    from vlash.bus import ControlEndpoint
    from vlash.messages import ActionChunk, Config, Hello, Observation

    images = test_images()
    features = {"joint_names": list(JOINTS), "action_names": list(JOINTS), "action_kind": "absolute",
                "cameras": {k: list(v) for k, v in CAMERAS.items()}}
    robots = [ControlEndpoint(endpoint, f"{prefix}_{i}", heartbeat_timeout_s=30.0) for i in range(n)]
    try:
        for bus in robots:
            bus.send(Hello(bus.robot_id, 0, features, 30.0, "vlash", {"chunk_size": CHUNK_LEN, "execution_horizon": 25}))
        _wait_all(robots, lambda bus, msg: isinstance(msg, Config) and msg.accepted, "Config")
        poller = zmq.Poller()
        by_socket = {}
        for bus in robots:
            poller.register(bus._socket(), zmq.POLLIN)
            by_socket[bus._socket()] = bus
        seq = dict.fromkeys(range(n), 0)
        sent_at: dict[int, float] = {}
        latency: list[float] = []
        overhead: list[float] = []
        model: list[float] = []
        index = {bus.robot_id: i for i, bus in enumerate(robots)}

        def send(i: int) -> None:
            seq[i] += 1
            state = np.full(STATE_DIM, 0.01 * i, np.float32)
            obs = Observation(robots[i].robot_id, seq[i], seq[i], time.time(), state, images, "bench", seq[i],
                              np.zeros((0, STATE_DIM), np.float32))
            sent_at[i] = time.perf_counter()
            robots[i].send(obs)

        for i in range(n):
            send(i)
        total = n * (WARMUP_REQUESTS + requests)
        done, timed_from = 0, None
        deadline = time.monotonic() + 120 + total * 2.0
        while done < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n} robots: {done} of {total} chunks arrived in time")
            for sock, _ in poller.poll(1000):
                bus = by_socket[sock]
                i = index[bus.robot_id]
                for msg in bus.poll():
                    if not isinstance(msg, ActionChunk) or msg.obs_seq != seq[i]:
                        continue
                    now = time.perf_counter()
                    if seq[i] > WARMUP_REQUESTS:
                        timed_from = timed_from or sent_at[i]
                        latency.append((now - sent_at[i]) * 1000.0)
                        model.append(msg.model_ms)
                        overhead.append(latency[-1] - msg.model_ms)
                    done += 1
                    if seq[i] < WARMUP_REQUESTS + requests:
                        send(i)
        elapsed = time.perf_counter() - (timed_from or time.perf_counter())
    finally:
        for bus in robots:
            bus.close()
    return {
        "robots_n": n, "chunks": len(latency),
        "latency_ms_p50": float(np.percentile(latency, 50)), "latency_ms_p99": float(np.percentile(latency, 99)),
        "model_ms_p50": float(np.percentile(model, 50)), "overhead_ms_p50": float(np.percentile(overhead, 50)),
        "overhead_ms_p99": float(np.percentile(overhead, 99)),
        "chunks_per_s": len(latency) / elapsed if elapsed > 0 else float("nan"),
    }


def _wait_all(robots: list, accept, what: str, timeout_s: float = 60.0) -> None:
    pending = {bus.robot_id for bus in robots}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for bus in robots:
            if bus.robot_id in pending and any(accept(bus, m) for m in bus.poll(timeout_ms=5)):
                pending.discard(bus.robot_id)
    if pending:
        raise RuntimeError(f"no {what} for robot(s) {sorted(pending)}")


def _line(c: dict[str, Any]) -> str:
    how = "batched" if c["batching"] else "one call each"
    return (f"{c['policy']:<8} {c['transport']} {how:<13} robots={c['robots_n']}: latency p50 {c['latency_ms_p50']:.1f} "
            f"p99 {c['latency_ms_p99']:.1f} ms, model {c['model_ms_p50']:.1f} ms, overhead p50 {c['overhead_ms_p50']:.2f} ms, "
            f"{c['chunks_per_s']:.1f} chunks/s, batch {c['mean_batch']:.1f}")


def _cell(result: dict[str, Any], policy: str, transport: str, batching: bool, n: int) -> dict[str, Any] | None:
    return next((c for c in result["cells"] if (c["policy"], c["transport"], c["batching"], c["robots_n"])
                 == (policy, transport, batching, n)), None)


def verdicts(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's two targets, from the ACT cells (tcp) where they were measured."""
    out: dict[str, Any] = {}
    one = _cell(result, "act", "tcp", True, 1)
    if one is not None:
        out["overhead_ms_p50"] = one["overhead_ms_p50"]
        out["overhead_meets"] = one["overhead_ms_p50"] <= TARGET_OVERHEAD_MS
        floor = next((f for f in result["floors"] if (f["policy"], f["transport"]) == ("act", "tcp")), None)
        out["bus_after_gap_ms_p50"] = floor["bus_rtt_ms_p50"] if floor else None
        out["overhead_minus_bus_ms"] = one["overhead_ms_p50"] - (floor or result)["bus_rtt_ms_p50"]
        four = _cell(result, "act", "tcp", True, 4)
        if four is not None:
            out["batch4_ratio"] = four["latency_ms_p50"] / one["latency_ms_p50"]
            out["batch4_meets"] = out["batch4_ratio"] <= TARGET_BATCH_RATIO
            # what the CPU allows: a batch of 4 can be no faster than the model's own batch-4 call
            out["batch4_model_ratio"] = four["model_ms_p50"] / one["model_ms_p50"]
            out["batch4_mean_batch"] = four["mean_batch"]
        lone = _cell(result, "act", "tcp", False, 1)
        if lone is not None:  # overhead, not latency: the model's own time varies more than any wait would
            out["lone_overhead_ms"] = {"batched": one["overhead_ms_p50"], "one_call_each": lone["overhead_ms_p50"]}
    return out


def rerender(folder: Path) -> str:
    """Verdicts and serve.md again from a finished run's serve.json (e.g. after a change to the report)."""
    result = json.loads((folder / "serve.json").read_text())
    result["verdicts"] = verdicts(result)
    (folder / "serve.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / "serve.md").write_text(markdown(result))
    plot(result, folder / "serve.png")
    return markdown(result)


def markdown(result: dict[str, Any]) -> str:
    from vlash.experiments.markdown import table

    rows = [[c["policy"], c["transport"], "batched" if c["batching"] else "one call each", c["robots_n"],
             f"{c['latency_ms_p50']:.1f}", f"{c['latency_ms_p99']:.1f}", f"{c['model_ms_p50']:.1f}",
             f"{c['overhead_ms_p50']:.2f}", f"{c['chunks_per_s']:.1f}", f"{c['mean_batch']:.1f}"]
            for c in result["cells"]]
    lines = [f"# vlash bench serve ({result['requests_per_robot']} chunks per robot and cell, {result['seconds']:.0f} s)", "",
             f"Bare bus round trip in the same run: {result['bus_rtt_ms_p50']:.3f} ms p50 back to back; after an idle "
             "gap as long as the model's call: " + ", ".join(f"{f['policy']} {f['transport']} {f['bus_rtt_ms_p50']:.3f} ms"
                                                           for f in result["floors"]) + ". "
             f"Emulated policy: {result['emulated_ms']:g} ms + {result['per_item_ms']:g} ms per extra item.", "",
             *table(["policy", "transport", "serving", "robots", "latency p50 ms", "p99 ms", "model p50 ms",
                     "overhead p50 ms", "chunks/s", "mean batch"], rows), ""]
    v = result["verdicts"]
    if "overhead_ms_p50" in v:
        lines.append(f"- overhead beyond the model, ACT, 1 robot, tcp: {v['overhead_ms_p50']:.2f} ms p50 "
                     f"(target ≤ {TARGET_OVERHEAD_MS} ms: {'meets' if v['overhead_meets'] else 'misses'}; "
                     f"{v['overhead_minus_bus_ms']:+.2f} ms against the bare bus after the same idle gap)")
    if "batch4_ratio" in v:
        lines.append(f"- 4 robots batched / 1 robot, per-robot latency p50: {v['batch4_ratio']:.2f}× "
                     f"(target ≤ {TARGET_BATCH_RATIO}×: {'meets' if v['batch4_meets'] else 'misses'}); the model's own "
                     f"batched call / single call: {v['batch4_model_ratio']:.2f}× (mean batch {v['batch4_mean_batch']:.1f})")
    if "lone_overhead_ms" in v:
        lone = v["lone_overhead_ms"]
        lines.append(f"- a lone robot, overhead p50 with batching on / off: {lone['batched']:.2f} / "
                     f"{lone['one_call_each']:.2f} ms (no added wait)")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Per-robot latency and chunks/s against the robot count, batched vs one call each, per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = sorted({c["policy"] for c in result["cells"]})
    fig, axes = plt.subplots(2, len(policies), figsize=(5 * len(policies), 7), squeeze=False)
    for col, policy in enumerate(policies):
        for transport in sorted({c["transport"] for c in result["cells"]}):
            for batching, style in ((True, "-o"), (False, "--s")):
                cells = sorted((c for c in result["cells"] if (c["policy"], c["transport"], c["batching"])
                                == (policy, transport, batching)), key=lambda c: c["robots_n"])
                if not cells:
                    continue
                xs = [c["robots_n"] for c in cells]
                label = f"{transport}, {'batched' if batching else 'one call each'}"
                axes[0][col].plot(xs, [c["latency_ms_p50"] for c in cells], style, label=label)
                axes[1][col].plot(xs, [c["chunks_per_s"] for c in cells], style, label=label)
        one = _cell(result, policy, "tcp", True, 1) or _cell(result, policy, "ipc", True, 1)
        if one is not None:
            axes[0][col].axhline(TARGET_BATCH_RATIO * one["latency_ms_p50"], color="grey", ls=":",
                                 label=f"target at 4 robots: {TARGET_BATCH_RATIO}× one robot")
        axes[0][col].set_title(f"{policy}: per-robot chunk latency p50")
        axes[0][col].set_ylabel("ms")
        axes[1][col].set_title(f"{policy}: chunks per second, all robots")
        axes[1][col].set_xlabel("robots")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xscale("log", base=2)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
