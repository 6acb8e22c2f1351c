"""``vlash bench soak`` for a few seconds with the toy parts: soak.json has every figure, consistently."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from tests.faults.procs import ROOT, VLASH, read_lines

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
    # the lateness figures are those of the ticks the run log holds (one row per counted tick)
    lateness = [row["lateness_ms"] for row in read_lines(tmp_path / "soak" / "ticks.jsonl")]
    assert len(lateness) == result["ticks"]
    for key, q in (("lateness_ms_p50", 50), ("lateness_ms_p99", 99), ("lateness_ms_max", 100)):
        assert result[key] == pytest.approx(np.percentile(lateness, q), abs=1e-3), key
    assert result["drift_ms"] == pytest.approx(lateness[-1], abs=1e-3)
    assert isinstance(result["meets_targets"], bool) and result["rss_mb_series"]
    assert "missed_ticks" in proc.stdout and (tmp_path / "soak" / "ticks.jsonl").exists()
