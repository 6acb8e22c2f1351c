"""`vlash bench serve`: a real server process and real robots on loopback; every chunk comes back, and the
JSON, markdown and plot are written (figures reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run_bench(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vlash.cli", "bench", "serve", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_bench_serve_counts_every_chunk_and_writes_its_outputs(tmp_path):
    proc = run_bench("--robots", "1,3", "--requests", "3", "--policies", "emulated", "--transports", "tcp,ipc",
                     "--emulated-ms", "5", "--per-item-ms", "1", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "serve.json").read_text())
    cells = {(c["transport"], c["batching"], c["robots_n"]): c for c in result["cells"]}
    assert set(cells) == {(t, b, n) for t in ("tcp", "ipc") for b in (True, False) for n in (1, 3)}
    for (_, batching, n), cell in cells.items():
        assert cell["chunks"] == 3 * n  # every robot got every chunk it asked for, warm-up excluded
        assert cell["mean_batch"] >= 1.0 and (batching or cell["mean_batch"] == 1.0)
        assert cell["model_ms_p50"] >= 5.0  # the emulated cost is the floor of each call
    assert {(f["policy"], f["transport"]) for f in result["floors"]} == {("emulated", "tcp"), ("emulated", "ipc")}
    assert "| emulated | ipc | batched | 3 |" in (tmp_path / "serve.md").read_text()
    assert (tmp_path / "serve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args,said", [
    (["--robots", "0"], "--robots must be >= 1"),
    (["--policies", "gpt"], "--policies are act and/or emulated"),
    (["--transports", "udp"], "--transports are tcp and/or ipc"),
    (["--checkpoint", "/no/such/ckpt"], "no such folder"),
])
def test_bad_options_exit_2_with_one_line(args, said):
    proc = run_bench(*args)
    assert proc.returncode == 2 and said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
