"""`vlash eval --quick` runs end to end in a subprocess and writes results.json, results.md and a PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = ("task", "mode", "delay", "policy", "episodes", "success_rate", "mean_steps")


def test_eval_quick_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    cmd = [sys.executable, "-m", "vlash.cli", "eval", "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = json.loads((out / "results.json").read_text())
    assert isinstance(records, list) and records
    for record in records:
        missing = [k for k in KEYS if k not in record]
        assert not missing, f"record lacks {missing}: {record}"
        if record["mode"] == "sync" and record["delay"] == 0:  # the scripted expert, deterministic: always
            assert record["success_rate"] == 1.0, record
        assert record["episodes"] > 0 and record["policy"] == "expert"
    cells = {(r["task"], r["mode"], r["delay"]) for r in records}
    assert len(cells) == len(records), "one record per task/mode/delay/policy"
    assert {r["mode"] for r in records} == {"sync", "naive", "vlash"}
    assert len({r["delay"] for r in records}) >= 2
    png = out / "success_vs_delay.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "results.md").read_text().startswith("### ")
