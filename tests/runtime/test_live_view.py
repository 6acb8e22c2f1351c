"""The live view (rerun): `vlash launch --save-rrd --display URL` on the sim, read back with rerun's reader.

The viewer is stood in for by rerun's own server (``rerun --save FILE``, no window): the control
process streams to it over gRPC exactly as to a viewer, and it writes what it received to a file.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from vlash.experiments.launch_specs import sim_spec
from vlash.launchfile import free_port
from vlash.runlog import read_jsonl
from vlash.supervisor import interrupt

rr = pytest.importorskip("rerun")

REPO = Path(__file__).resolve().parents[2]
VLASH = [sys.executable, "-m", "vlash.cli"]
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def recorded(path: Path) -> dict[str, list[dict]]:
    """Entity path (no leading '/') -> its non-static rows as plain dicts, read with rerun's own reader."""
    try:
        from rerun.experimental import RrdReader
    except ImportError:  # rerun before 0.32
        from rerun.dataframe import load_recording

        recording = load_recording(str(path))
        entities = {c.entity_path for c in recording.schema().component_columns()}
        table = recording.view(index="step", contents="/**").select().read_all().to_pylist()
        return {e.lstrip("/"): [r for r in table if any(k.startswith(e + ":") and r[k] is not None for k in r)]
                for e in entities}
    out: dict[str, list[dict]] = {}
    for chunk in RrdReader(path).stream().to_chunks():
        if chunk.is_static:
            continue
        batch = chunk.to_record_batch().to_pydict()
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        out.setdefault(chunk.entity_path.lstrip("/"), []).extend(rows)
    for rows in out.values():
        rows.sort(key=lambda r: r["step"])
    return out


def scalar(row: dict) -> float:
    value = row["Scalars:scalars"]
    return float(value[0] if isinstance(value, list) else value)


@pytest.fixture
def viewer(tmp_path):
    """A headless rerun server on a free loopback port that saves what it receives; (url, file)."""
    port, saved = free_port(), tmp_path / "viewer.rrd"
    exe = Path(sys.executable).parent / "rerun"
    proc = subprocess.Popen([str(exe) if exe.exists() else "rerun", "--bind", "127.0.0.1", "--port", str(port),
                             "--save", str(saved)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:  # listening?
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the rerun server did not start"
                time.sleep(0.1)
        yield f"rerun+http://127.0.0.1:{port}/proxy", saved, proc
    finally:
        interrupt(proc)


@pytest.mark.filterwarnings("ignore:RRD file has no footer")
def test_launch_streams_and_saves_state_targets_images_switches_and_the_conditioned_state(tmp_path, viewer):
    url, viewer_file, viewer_proc = viewer
    spec = sim_spec("live", "vlash", latency=60, horizon=20, cameras=["front"])
    launch_file = tmp_path / "live.yaml"
    launch_file.write_text(yaml.safe_dump(spec))
    run = tmp_path / "run"
    done = subprocess.run(VLASH + ["launch", str(launch_file), "--duration", "3", "--quiet", "--out", str(run),
                                   "--save-rrd", "--display", url], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{run}/arm/recording.rrd" in done.stdout
    ticks = read_jsonl(run / "arm" / "ticks.jsonl")
    data = recorded(run / "arm" / "recording.rrd")
    for joint in JOINTS:  # every tick, per joint: the measured state and the target sent
        states, targets = data[f"arm/joints/{joint}/state"], data[f"arm/joints/{joint}/target"]
        assert [r["step"] for r in states] == [r["step"] for r in targets] == [t["step"] for t in ticks]
    j = 2
    assert np.allclose([scalar(r) for r in data[f"arm/joints/{JOINTS[j]}/state"]], [t["state"][j] for t in ticks])
    assert np.allclose([scalar(r) for r in data[f"arm/joints/{JOINTS[j]}/target"]], [t["action"][j] for t in ticks])
    assert [scalar(r) for r in data["arm/stall"]] == [float(t["stall"]) for t in ticks]
    assert len(data["arm/camera/front"]) >= len(ticks) // 3 - 1  # images at 10 Hz of 30
    switches = [t for t in ticks if "switch" in t]
    assert switches and [r["step"] for r in data["arm/switch"]] == [t["step"] for t in switches]
    assert np.allclose([scalar(r) for r in data["arm/switch/jump"]], [t["switch"] for t in switches])
    assert all("conditioned on ŝ" in r["TextLog:text"][0] for r in data["arm/switch"])
    # vlash with the 'target' estimator conditions chunk c on the last target before its start step
    by_step = {t["step"]: t for t in ticks}
    conditioned = [r for r in data["arm/joints/shoulder_lift/conditioned"] if r["step"] - 1 in by_step]
    assert conditioned
    for row in conditioned:
        assert scalar(row) == pytest.approx(by_step[row["step"] - 1]["action"][1], abs=1e-6)
    chunks = read_jsonl(run / "arm" / "chunks.jsonl")
    assert [round(scalar(r), 3) for r in data["arm/timing/rtt_ms"]] == [round(c["rtt_ms"], 3) for c in chunks]
    assert len(data["arm/plan"]) == len(chunks)
    # the viewer got the same stream
    viewer_proc.send_signal(signal.SIGINT)
    viewer_proc.wait(10)
    streamed = recorded(viewer_file)
    assert len(streamed["arm/joints/gripper/target"]) == len(ticks)
    assert {"arm/camera/front", "arm/switch"} <= set(streamed)


def shadowed_rerun(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import rerun` fails, as where rerun-sdk is not installed."""
    shadow = tmp_path / "shadow" / "rerun"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'rerun'\")\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(REPO)])}


@pytest.mark.parametrize("argv, env_kind, message", [
    (["control", "{launch}", "--display"], "no_rerun", "needs rerun-sdk"),
    (["launch", "{launch}", "--save-rrd", "--duration", "1"], "no_rerun", "needs rerun-sdk"),
    (["control", "{launch}", "--display", "http://example:1"], "plain", "expected 'spawn' or a viewer URL"),
    (["launch", "{launch}", "--display"], "no_screen", "no screen here"),
    (["control", "{launch}", "--display", "spawn"], "no_screen", "no screen here"),
])
def test_the_live_view_refuses_in_one_line_before_anything_starts(tmp_path, argv, env_kind, message):
    launch_file = tmp_path / "l.yaml"
    spec = sim_spec("refused", "vlash")
    spec["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    launch_file.write_text(yaml.safe_dump(spec))
    env = {**os.environ}
    if env_kind == "no_rerun":
        env = shadowed_rerun(tmp_path)
    elif env_kind == "no_screen":
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    argv = [a.format(launch=launch_file) for a in argv] + ["--out", str(tmp_path / "run")]
    done = subprocess.run(VLASH + argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "run" / "arm").exists()  # no robot process ran


def test_a_full_queue_drops_and_counts_and_never_blocks(tmp_path):
    from vlash.live_view import LiveView

    path = tmp_path / "v.rrd"
    view = LiveView("r", JOINTS[:2], [], fps=1000.0, save_path=path, queue_size=1)
    n = 2000
    for step in range(n):
        view.tick({"step": step, "lateness_ms": 0.0, "state": [0.1, step], "action": [0.2, step], "chunk": 0,
                   "stall": False, "delay_steps": 1}, {}, None, time.monotonic())
    counters = view.close()
    assert counters["dropped"] > 0 and counters["items"] + counters["dropped"] == n
    rows = recorded(path)["r/joints/shoulder_lift/target"]
    assert len(rows) == counters["items"]  # every item taken was written, none twice
    assert all(scalar(r) == r["step"] for r in rows)
