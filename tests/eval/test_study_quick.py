"""``vlash study --quick`` end to end: record, train, gate, a paired grid, the report (a tiny ACT; ~1 min)."""

import json
import subprocess
import sys


def test_quick_study_writes_paired_cells_and_a_report(tmp_path):
    out = tmp_path / "study"
    proc = subprocess.run([sys.executable, "-m", "vlash.cli", "study", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = json.loads((out / "accuracy_study.json").read_text())
    records = study["records"]
    assert [(r["mode"], r["delay"]) for r in records] == [("sync", 0), ("sync", 2), ("naive", 2), ("vlash", 2)]
    assert {r["estimator"] for r in records if r["mode"] == "vlash"} == {"oracle"}
    assert all(r["seeds"] == [10000, 10001] and len(r["outcomes"]) == 2 for r in records)  # paired
    (training,) = study["training"].values()
    assert training["runs"][0]["steps"] == 10 and "passed" in training["runs"][0]["gate"]
    assert "McNemar" in (out / "study.md").read_text() and (out / "study.png").stat().st_size > 0
    lines = (out / "cells.jsonl").read_text().splitlines()
    assert len(lines) == 4
    again = subprocess.run([sys.executable, "-m", "vlash.cli", "study", "--quick", "--out", str(out)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--resume" in again.stderr  # never overwrites a study
    resumed = subprocess.run([sys.executable, "-m", "vlash.cli", "study", "--quick", "--resume", "--out", str(out)],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len((out / "cells.jsonl").read_text().splitlines()) == 4  # nothing ran twice
    started = json.loads((out / "started.json").read_text())["epoch"]
    final = json.loads((out / "accuracy_study.json").read_text())
    # --report rebuilds the same results from what is on disk, running nothing (also while a study runs)
    (out / "cells.jsonl").write_text("\n".join(lines[:3]) + "\n")  # as if the last cell were still running
    report = subprocess.run([sys.executable, "-m", "vlash.cli", "study", "--quick", "--report", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-2000:]
    snap = json.loads((out / "accuracy_study.json").read_text())
    assert snap["snapshot"] is True and snap["records"] == final["records"][:3]
    assert snap["training"] == final["training"]
    assert json.loads((out / "started.json").read_text())["epoch"] == started  # the first start is kept
    assert snap["wall_s"]["total"] >= final["wall_s"]["total"]  # since the first start, not this call
    assert "3 cells so far" in report.stdout
    empty = subprocess.run([sys.executable, "-m", "vlash.cli", "study", "--report", "--out", str(tmp_path / "none")],
                           capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "holds no study" in empty.stderr
