"""``vlash bench soak`` for a few seconds with the toy parts: soak.json has every figure, consistently."""

from __future__ import annotations

import json
import subprocess

from tests.faults.procs import ROOT, VLASH

KEYS = ("missed_ticks", "drift_ms", "rss_growth_mb", "lateness_ms_p99", "lateness_ms_p50", "ticks", "fps", "minutes")


def test_bench_soak_writes_its_figures(tmp_path):
    argv = [*VLASH, "bench", "soak", "--seconds", "3", "--fps", "50", "--out", str(tmp_path), "--latency", "20",
            "--driver", "tests.runtime.toy_driver:ToyDriver", "--policy", "tests.core.toy:StampPolicy",
            "--chunk-size", "20", "--horizon", "10"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "soak.json").read_text())
    for key in KEYS:
        assert result[key] is not None, key
    assert result["fps"] == 50 and result["minutes"] == 0.05 and result["expected_ticks"] == 150
    assert result["ticks"] + result["missed_ticks"] == result["expected_ticks"]
    assert result["logged_ticks"] == result["ticks"] and result["step_gaps"] == result["missed_ticks"]
    assert result["chunks"] > 0 and result["control_exit_code"] == 0
    assert result["lateness_ms_p99"] >= result["lateness_ms_p50"] >= 0
    assert isinstance(result["meets_targets"], bool) and result["rss_mb_series"]
    assert "missed_ticks" in proc.stdout and (tmp_path / "soak" / "ticks.jsonl").exists()
