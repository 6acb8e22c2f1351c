"""The inference process dies (SIGKILL, then a new one) or freezes (SIGSTOP, then SIGCONT) mid-run.

The control process must keep ticking, finish its plan, hold still, resume on fresh chunks, say
what happened in its counters, and leave a complete run log. The robot runs ``naive`` while the
server's default is ``vlash``, so a restarted server that skipped the robot's Hello shows up as
chunks stamped with the wrong mode.
"""

from __future__ import annotations

import signal

import pytest

from tests.faults.procs import check_tick_log, read_lines, robot, serve_counters, wait_until, write_launch

FPS, DURATION = 30, 6.0
OUTAGE_TICKS = 40  # how long the server stays away, counted in the robot's ticks


def run_with_outage(tmp_path, procs, fault: str):
    launch = write_launch(tmp_path, robots=[robot("arm", mode="naive")], fps=FPS)
    server = procs.serve(launch)
    control = procs.control(launch, "arm", tmp_path / "arm", DURATION)
    wait_until(lambda: control.status["chunks"] >= 2, what="first chunks")
    if fault == "kill":
        server.send(signal.SIGKILL)
        server.wait()
    else:
        server.send(signal.SIGSTOP)
    start = control.status["ticks"]
    wait_until(lambda: control.status["ticks"] >= start + OUTAGE_TICKS, what="ticks during the outage")
    assert control.alive()
    if fault == "kill":
        server = procs.serve(launch)  # same endpoint: the robot reconnects by itself
    else:
        server.send(signal.SIGCONT)
    assert control.wait(30) == 0, control.stderr()
    assert server.stop() == 0
    return control, server


@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_control_holds_through_an_inference_outage_then_resumes(tmp_path, procs, fault):
    control, server = run_with_outage(tmp_path, procs, fault)
    summary = control.summary
    assert summary is not None
    ticks = read_lines(tmp_path / "arm" / "ticks.jsonl")
    chunks = read_lines(tmp_path / "arm" / "chunks.jsonl")
    # the loop kept its schedule: every step was either ticked or counted as missed (how many are
    # missed depends on the machine's load, so that count is reported, not bounded), and it kept
    # ticking through the outage (run_with_outage waited for OUTAGE_TICKS ticks while it lasted)
    assert len(ticks) == summary["ticks"]
    assert summary["ticks"] + summary["missed_ticks"] == int(DURATION * FPS)
    check_tick_log(ticks)
    assert len(chunks) == summary["chunks"]
    # the outage: unanswered requests timed out, the plan ran out, the arm held still
    assert summary["counters"]["request_timeouts"] >= 1
    assert summary["stall_ticks"] > 0
    for prev, row in zip(ticks, ticks[1:], strict=False):
        if row["stall"]:
            assert row["action"] == prev["action"], f"moved while stalled at step {row['step']}"
    # ... and chunks came back after it
    arrivals = [c["arrival_step"] for c in chunks]
    gap_at = max(range(1, len(arrivals)), key=lambda i: arrivals[i] - arrivals[i - 1])
    assert arrivals[gap_at] - arrivals[gap_at - 1] >= OUTAGE_TICKS // 2
    assert len(chunks) - gap_at > 0, "no chunk after the outage"
    assert ticks[-1]["chunk"] == chunks[-1]["chunk"] or not ticks[-1]["stall"]
    # every chunk, before and after the outage, used the robot's own mode (its Hello reached the server)
    assert {c["mode"] for c in chunks} == {"naive"}
    served, bus = serve_counters(server)
    assert served["chunks_sent"] >= 1
    # the only rejections: observations from the robot before it re-introduced itself
    assert bus.get("rejected", 0) == bus.get("rejected_unknown_robot", 0)
    if fault == "kill":  # a new server does not know the robot: it introduced itself again
        assert summary["counters"].get("hello_resent", 0) >= 1
    # a thawed server may or may not still know the robot (that depends on how long it was frozen
    # against its heartbeat timeout); either way the modes above show the robot's Hello reached it
