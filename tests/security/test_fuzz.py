"""Fuzzing in CI: hypothesis properties of the decoder and a small ``vlash bench fuzz`` run.

The benchmark itself (``vlash bench fuzz``, 100k inputs by default) is run by hand; here it
runs a few thousand inputs and its JSON report is checked for shape and for no crash/no hang.
"""

from __future__ import annotations

import json
import subprocess

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.procs import ROOT, VLASH
from vlash.experiments.fuzzing import Generator, fuzz_decoder
from vlash.messages import REASONS, ProtocolError, decode, encode

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
KINDS = ["observation", "action_chunk", "hello", "config", "heartbeat", "error", "nope"]


def _decodes_or_rejects(data: bytes) -> None:
    try:
        msg = decode(data)
    except ProtocolError as err:
        assert err.reason in REASONS, err.reason
        return
    assert decode(encode(msg)).KIND == msg.KIND  # whatever is accepted re-encodes


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_are_rejected_cleanly(data):
    _decodes_or_rejects(data)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(KINDS), st.dictionaries(st.text(max_size=12), plain, max_size=8), st.integers(0, 3))
def test_random_envelopes_are_rejected_cleanly(kind, body, version):
    _decodes_or_rejects(msgpack.packb({"v": version, "kind": kind, "body": body}))


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(0, 2**32))
def test_mutated_messages_are_rejected_cleanly(seed):
    gen = Generator(seed)
    for _ in range(5):
        _decodes_or_rejects(gen.next()[1])


def test_fuzz_decoder_finds_every_common_rejection_reason():
    result = fuzz_decoder(3000, seed=1, hang_s=2.0)
    assert result["crashes"] == 0 and result["hangs"] == 0 and result["reencode_failures"] == 0
    assert result["accepted"] + result["rejected"] + result["crashes"] + result["hangs"] == 3000
    common = {"truncated", "malformed", "trailing", "version", "kind", "type", "missing", "unknown_field"}
    assert common <= set(result["rejected_by_reason"]), result["rejected_by_reason"]
    assert set(result["accepted_by_kind"]) == {"observation", "action_chunk", "hello", "config", "heartbeat", "error"}


def test_bench_fuzz_command_writes_its_report(tmp_path):
    proc = subprocess.run(
        [*VLASH, "bench", "fuzz", "--inputs", "2000", "--endpoint-inputs", "2000", "--hang-s", "30",
         "--abuse-s", "1.5", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    report = json.loads((tmp_path / "fuzz.json").read_text())
    decoder, endpoint, abuse = report["decoder"], report["endpoint"], report["abuse"]
    assert decoder["inputs"] == 2000 and decoder["crashes"] == 0 and decoder["hangs"] == 0
    # live abuse: the served robot executed nothing it did not ask for, in any phase; missed and
    # stall ticks are reported (a loaded CI machine may miss a tick: the bench's "ok" says so)
    assert set(abuse["phases"]) == {"baseline", "forged_ids", "hello_swaps", "decode_bombs", "garbage_flood"}
    for name, phase in abuse["phases"].items():
        assert phase["unrequested_actions"] == 0 and phase["ticks"] > 0, (name, phase)
        assert name == "baseline" or phase["attack_messages"] > 0
    assert abuse["control_exit_code"] == 0 and abuse["server_exit_code"] == 0
    assert proc.returncode == (0 if report["ok"] else 1), proc.stderr[-3000:]
    assert report["ok"] is abuse["ok"]  # decoder and endpoint held (asserted below); abuse decides the rest
    assert endpoint["inputs"] == 2000 and endpoint["server_alive_at_end"] and endpoint["server_exit_code"] == 0
    assert endpoint["probe_answers"] >= 1 and endpoint["probe_misses"] == 0
    # the server counted every input it rejected, by reason
    assert endpoint["server_rejected"] == sum(endpoint["server_rejected_by_reason"].values()) > 0
    assert endpoint["server_policy_errors"] == 0
