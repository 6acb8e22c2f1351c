"""The control process dies or is stopped: other robots are unaffected, the run log survives.

- SIGKILL of one robot's control process while the inference process serves two robots: the
  other robot keeps getting chunks, the killed one comes back under the same id and is served.
- The per-tick log is readable after SIGKILL up to its last flush (whole 32-line blocks) and
  complete after SIGINT/SIGTERM (one line per counted tick, one per installed chunk).
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.faults.procs import check_tick_log, read_lines, robot, serve_counters, wait_until, write_launch

FLUSH_EVERY = 32  # RunLog's default for ticks.jsonl


def test_control_killed_and_restarted_while_another_robot_is_served(tmp_path, procs):
    launch = write_launch(tmp_path, robots=[robot("a"), robot("b")])
    server = procs.serve(launch)
    a = procs.control(launch, "a", tmp_path / "a", None)
    b = procs.control(launch, "b", tmp_path / "b", 6.0)
    wait_until(lambda: a.status["chunks"] >= 2 and b.status["chunks"] >= 2, what="both robots served")
    a.send(signal.SIGKILL)
    assert a.wait() == -signal.SIGKILL
    last_status = a.status["ticks"]
    b_at_kill = b.status["chunks"]
    wait_until(lambda: b.status["chunks"] >= b_at_kill + 3, what="robot b served while a is dead")
    # a's run log, killed mid-run: every line parses, whole flush blocks, nothing after the last flush
    rows = read_lines(tmp_path / "a" / "ticks.jsonl")
    check_tick_log(rows)
    assert len(rows) % FLUSH_EVERY == 0 and len(rows) >= last_status - FLUSH_EVERY
    assert not (tmp_path / "a" / "summary.json").exists()
    # a restarts under the same id (a new ZeroMQ identity) and is served again
    a2 = procs.control(launch, "a", tmp_path / "a2", None)
    wait_until(lambda: a2.status["chunks"] >= 1, what="robot a served again after its restart")
    assert a2.stop() == 0, a2.stderr()
    assert b.wait(30) == 0, b.stderr()
    assert server.stop() == 0
    assert a2.summary["chunks"] > 0
    for summary in (a2.summary, b.summary):
        assert summary["counters"].get("chunk_rejected_robot", 0) == 0  # nobody got another robot's chunks
        assert summary["counters"].get("bus_rejected", 0) == 0
    assert b.summary["ticks"] + b.summary["missed_ticks"] == 6 * 30
    assert len(read_lines(tmp_path / "b" / "ticks.jsonl")) == b.summary["ticks"]
    served, bus = serve_counters(server)
    # a's return is either a reconnect (same id, new route) or, if it was gone long enough, a new join
    assert bus.get("reconnects", 0) + bus.get("robots_joined", 0) >= 3
    assert served["chunks_sent"] >= a2.summary["chunks"] + b.summary["chunks"]


def test_run_log_after_sigkill_is_readable_up_to_the_last_flush(tmp_path, procs):
    launch = write_launch(tmp_path)  # no server at all: the robot holds and still logs every tick
    control = procs.control(launch, "arm", tmp_path / "arm", None, "--connect-timeout", "0.2")
    wait_until(lambda: control.status["ticks"] >= 2 * FLUSH_EVERY, what="ticks")
    control.send(signal.SIGKILL)
    control.wait()
    reported = control.status["ticks"]  # ticks done before the kill, at least
    rows = read_lines(tmp_path / "arm" / "ticks.jsonl")
    check_tick_log(rows)
    assert len(rows) % FLUSH_EVERY == 0 and len(rows) >= reported - FLUSH_EVERY + 1
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_log_is_complete_after_sigint_or_sigterm(tmp_path, procs, sig):
    launch = write_launch(tmp_path)
    server = procs.serve(launch)
    control = procs.control(launch, "arm", tmp_path / "arm", None)
    wait_until(lambda: control.status["chunks"] >= 2 and control.status["ticks"] >= 40, what="a running robot")
    control.send(sig)
    assert control.wait() == 0, control.stderr()
    server.stop()
    summary = control.summary
    assert summary is not None and summary["ticks"] > 40
    assert json.loads((tmp_path / "arm" / "summary.json").read_text())["ticks"] == summary["ticks"]
    ticks = read_lines(tmp_path / "arm" / "ticks.jsonl")
    assert len(ticks) == summary["ticks"]  # every tick, including the unflushed tail
    assert len(read_lines(tmp_path / "arm" / "chunks.jsonl")) == summary["chunks"]
    check_tick_log(ticks)
