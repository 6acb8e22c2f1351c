"""`vlash bench transport` runs two real processes and writes transport.json (figures not asserted)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from vlash.cli import main as vlash_main

KEYS = ("rtt_ms_p50", "rtt_ms_p99", "encode_ms_p50", "decode_ms_p50", "payload_bytes")


def run_bench(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vlash.cli", "bench", "transport", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("jpeg", [None, 80])
def test_bench_transport_writes_json(tmp_path, jpeg):
    args = ["--round-trips", "50", "--warmup", "5", "--out", str(tmp_path)]
    if jpeg is not None:
        args += ["--jpeg", str(jpeg)]
    proc = run_bench(*args)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "transport.json").read_text())
    for key in KEYS:
        assert result[key] > 0, key
    assert result["n"] == 50 and result["lost"] == 0 and result["jpeg_quality"] == jpeg
    raw_bytes = 2 * 224 * 224 * 3
    assert (result["payload_bytes"] > raw_bytes) is (jpeg is None)
    assert result["server_counters"]["observations"] >= 55 and result["client_counters"]["send_dropped"] == 0
    # the printed summary reports this run's counts and verdict
    assert re.search(r"round trips +50 \(\+5 warm-up, 0 lost\)", proc.stdout), proc.stdout
    verdict = "meets" if result["rtt_ms_p50"] <= result["target_rtt_ms_p50"] else "misses"
    assert f"rtt p50 <= {result['target_rtt_ms_p50']} ms: {verdict}" in proc.stdout


def test_bench_rejects_bad_arguments(tmp_path, capsys):
    assert run_bench("--round-trips", "0", "--out", str(tmp_path)).returncode == 2
    assert vlash_main(["bench", "no_such_benchmark"]) == 2
    assert "unknown benchmark 'no_such_benchmark'" in capsys.readouterr().err
