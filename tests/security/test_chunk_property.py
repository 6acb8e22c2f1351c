"""Property: no well-formed ActionChunk, of any content, raises in the control tick or gets executed
unless it answers an observation this robot sent.

Each example is a fresh real :class:`ControlLoop` (fake clock, fake driver) fed a short stream of
chunks that went through the real wire codec: arbitrary integers (ids, steps, sequence numbers up
to 2**63), arbitrary finite floats and sizes, some of them genuine answers, most forged.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.runtime.toy_driver import ToyDriver
from vlash.control import ControlConfig, ControlLoop
from vlash.messages import ActionChunk, Config, Hello, Message, Observation, ProtocolError, decode, encode

H, DMAX, LIMIT = 8, 3, 1e6
BIG = 2**63 - 1


class Wire:
    """The control side of a bus that delivers exactly what the test puts on it, through the codec."""

    def __init__(self) -> None:
        self.inbox: list[Message] = []
        self.sent: dict[int, int] = {}  # observation seq -> step
        self.counters: dict[str, int] = {}

    def send(self, msg: Message) -> bool:
        if isinstance(msg, Observation):
            self.sent[msg.seq] = msg.step
        elif isinstance(msg, Hello):  # the server's answer: accepted, Δmax = DMAX
            self.inbox.append(Config(msg.robot_id, 1, True, {"max_delay_steps": DMAX}))
        return True

    def poll(self) -> list[Message]:
        out, self.inbox = self.inbox, []
        return out

    def maybe_heartbeat(self, now: float) -> bool:
        return False

    def seconds_since_heard(self) -> float:
        return 0.0


any_int = st.integers(0, BIG)
floats = st.floats(allow_nan=False, allow_infinity=False, width=32)


@st.composite
def chunk_specs(draw):
    """A chunk description; ``answer`` chooses whether its (obs_seq, obs_step) is a real request's."""
    rows = draw(st.integers(1, 3 * H))
    cols = draw(st.sampled_from([2, 2, 2, 1, 3, 7]))
    values = draw(st.one_of(st.just(None), st.lists(floats, min_size=1, max_size=3)))  # tiled over the chunk
    return {
        "answer": draw(st.booleans()),
        "obs_seq": draw(any_int), "obs_step": draw(any_int),
        "start_offset": draw(st.one_of(st.integers(-4, DMAX + 4), any_int)),
        "start_step": draw(any_int),
        "delay": draw(st.one_of(st.integers(0, DMAX + 2), any_int)),
        "chunk_id": draw(any_int), "rows": rows, "cols": cols, "values": values,
        "model_ms": draw(st.floats(allow_nan=False, allow_infinity=False)),
        "mode": draw(st.sampled_from(["vlash", "sync", "x" * 64, ""])),
        "ticks_after": draw(st.integers(0, 6)),
    }


def build(spec: dict, wire: Wire, rng_value: float) -> ActionChunk | None:
    seq, step = spec["obs_seq"], spec["obs_step"]
    if spec["answer"] and wire.sent:
        seq = max(wire.sent)
        step = wire.sent[seq]
    start = step + spec["start_offset"] if 0 <= step + spec["start_offset"] <= BIG else spec["start_step"]
    if spec["values"] is None:
        actions = np.full((spec["rows"], spec["cols"]), rng_value, np.float32)
    else:
        actions = np.resize(np.asarray(spec["values"], np.float32), (spec["rows"], spec["cols"]))
    msg = ActionChunk("arm", 1, spec["chunk_id"], seq, step, start, actions, spec["mode"], spec["delay"],
                      "target", spec["model_ms"])
    try:
        return decode(encode(msg))  # only what the wire would deliver: well-formed messages
    except ProtocolError:
        return None


def requested(chunk: ActionChunk, sent: dict[int, int], taken: set[int], newest: int) -> bool:
    """The test's own statement of what the robot may execute (not the runtime's function)."""
    return (sent.get(chunk.obs_seq) == chunk.obs_step and chunk.obs_seq not in taken
            and chunk.obs_step >= newest
            and chunk.obs_step <= chunk.start_step <= chunk.obs_step + DMAX and chunk.delay_steps <= DMAX
            and 1 <= len(chunk.actions) <= H and chunk.actions.shape[1] == 2)


@settings(max_examples=int(os.environ.get("VLASH_PROPERTY_EXAMPLES", 10_000)), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(chunk_specs(), min_size=1, max_size=4))
def test_no_chunk_raises_in_the_tick_and_only_requested_ones_are_executed(specs):
    wire = Wire()
    loop = ControlLoop(ToyDriver(low=-LIMIT, high=LIMIT), wire, ControlConfig(robot_id="arm", mode="vlash", chunk_size=H,
                                                                             execution_horizon=4, fps=30.0),
                       clock=lambda: 0.0, wall_clock=lambda: 0.0)
    loop.hello()
    allowed: set[tuple[float, ...]] = set()
    taken: set[int] = set()
    newest, step, delivered = -1, 0, 0
    for i, spec in enumerate(specs):
        loop.tick(step, step / 30.0)  # sends the first observation, then later ones as the plan asks
        step += 1
        chunk = build(spec, wire, rng_value=0.25 + i)
        if chunk is None:
            continue
        if requested(chunk, wire.sent, taken, newest):
            taken.add(chunk.obs_seq)
            newest = chunk.obs_step
            allowed |= {tuple(np.clip(row, -LIMIT, LIMIT).tolist()) for row in chunk.actions}
        wire.inbox.append(chunk)
        delivered += 1
        for _ in range(1 + spec["ticks_after"]):
            record = loop.tick(step, step / 30.0)
            step += 1
            action = np.asarray(record["action"])
            assert action.shape == (2,) and np.all(np.isfinite(action)) and np.all(np.abs(action) <= LIMIT)
            if record["chunk"] >= 0:
                assert tuple(action.tolist()) in allowed  # only rows of chunks it asked for
    assert loop.chunks == len(taken)
    rejected = sum(v for k, v in loop.counters.items() if k.startswith("chunk_rejected_"))
    assert loop.chunks + rejected == delivered  # every chunk was either taken or counted as dropped
