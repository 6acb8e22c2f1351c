"""The wire protocol: every kind round-trips; every bad input raises ProtocolError naming the field."""

from __future__ import annotations

import logging
import pickle

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlash.contracts import ObservationFrame
from vlash.jpeg import frame_size
from vlash.messages import (
    DEFAULT_LIMITS,
    PROTOCOL_VERSION,
    REASONS,
    ActionChunk,
    Config,
    Error,
    Heartbeat,
    Hello,
    Limits,
    Observation,
    ProtocolError,
    RejectCounter,
    decode,
    encode,
)

RNG = np.random.default_rng(0)


def make_obs(**overrides) -> Observation:
    fields = dict(
        robot_id="arm0",
        seq=7,
        step=120,
        wall_time=1_700_000_000.25,
        state=np.linspace(-1, 1, 6, dtype=np.float32),
        images={
            "front": RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8),
            "wrist": RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        },
        task="pick up the red cube",
        plan_start_step=121,
        plan=np.arange(24, dtype=np.float32).reshape(4, 6) / 10,
        extras={"velocity": np.ones(6, np.float32), "task_state": np.zeros(3, np.float32)},
        last_rtt_ms=42.5,
    )
    fields.update(overrides)
    return Observation(**fields)


def make_frame(step: int, **overrides) -> ObservationFrame:
    """A past reading matching :func:`make_obs` (6 joints, the same extras)."""
    fields = dict(
        step=step,
        state=np.full(6, step / 100, np.float32),
        extras={"velocity": np.full(6, step, np.float32), "task_state": np.zeros(3, np.float32)},
    )
    fields.update(overrides)
    return ObservationFrame(**fields)


def make_hist_obs(**overrides) -> Observation:
    """An observation at step 120 with the readings of steps 118 and 119."""
    return make_obs(history=(make_frame(118), make_frame(119)), **overrides)


def make_chunk(**overrides) -> ActionChunk:
    fields = dict(
        robot_id="arm0",
        seq=3,
        chunk_id=3,
        obs_seq=7,
        obs_step=120,
        start_step=123,
        actions=np.arange(300, dtype=np.float32).reshape(50, 6) / 100,
        mode="vlash",
        delay_steps=3,
        estimator="target",
        model_ms=18.5,
        queue_ms=0.25,
        server_ms=19.0,
    )
    fields.update(overrides)
    return ActionChunk(**fields)


def all_messages() -> list:
    return [
        make_obs(),
        make_obs(plan=np.zeros((0, 6), np.float32), images={}, extras={}, last_rtt_ms=-1.0),
        make_hist_obs(),
        make_chunk(),
        Hello(
            "arm0",
            0,
            features={
                "joint_names": ["shoulder_pan", "gripper"],
                "action_names": ["shoulder_pan.pos", "gripper.pos"],
                "cameras": {"front": [480, 640]},
                "action_kind": "absolute",
                "limits": {"low": [-3.1, 0.0], "high": [3.1, float("inf")]},
            },
            fps=30.0,
            mode="vlash",
            chunk_settings={"chunk_size": 50, "execution_horizon": 24, "quantization": 1},
        ),
        Config(
            "arm0",
            1,
            accepted=True,
            policy={"chunk_size": 50, "name": "act", "nested": {"a": [1, None]}},
            reason="",
        ),
        Config("arm0", 2, accepted=False, policy={}, reason="action dim mismatch"),
        Heartbeat("arm0", 9, 1_700_000_000.5),
        Error("arm0", 4, "policy_error", "boom"),
    ]


def assert_same(a, b) -> None:
    assert type(a) is type(b)
    for name in a.__dataclass_fields__:
        if name == "KIND":
            continue
        x, y = getattr(a, name), getattr(b, name)
        if name == "history":
            assert len(x) == len(y), name
            for f, g in zip(x, y, strict=True):
                assert f.step == g.step and g.images == {} and np.array_equal(f.state, g.state), name
                assert f.extras.keys() == g.extras.keys() and all(np.array_equal(f.extras[k], g.extras[k]) for k in f.extras)
        elif isinstance(x, np.ndarray):
            assert y.dtype == x.dtype and y.shape == x.shape and np.array_equal(x, y), name
        elif isinstance(x, dict) and x and isinstance(next(iter(x.values())), np.ndarray):
            assert x.keys() == y.keys(), name
            for k in x:
                assert y[k].dtype == x[k].dtype and np.array_equal(x[k], y[k]), f"{name}.{k}"
        else:
            assert x == y, name


def wire(msg) -> dict:
    return msgpack.unpackb(encode(msg))


def reject(obj_or_bytes, limits: Limits = DEFAULT_LIMITS) -> ProtocolError:
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else msgpack.packb(obj_or_bytes)
    with pytest.raises(ProtocolError) as info:
        decode(data, limits)
    err = info.value
    assert err.reason in REASONS and err.reason != "internal", err
    assert str(err).startswith(err.field)
    return err


# --- round trips ------------------------------------------------------------------------------
@pytest.mark.parametrize("msg", all_messages(), ids=lambda m: type(m).__name__)
def test_every_kind_round_trips(msg):
    data = encode(msg)
    assert isinstance(data, bytes)
    assert_same(msg, decode(data))
    env = msgpack.unpackb(data)
    assert env["v"] == PROTOCOL_VERSION and env["kind"] == msg.KIND


def test_jpeg_images_round_trip_as_uint8_rgb():
    h, w = 96, 128
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([xx * 2, yy * 2, np.full_like(xx, 200)], axis=-1).astype(np.uint8)
    obs = make_obs(images={"front": smooth})
    raw, jpeg = encode(obs), encode(obs, jpeg_quality=90)
    assert len(jpeg) < len(raw) / 3
    got = decode(jpeg).images["front"]
    assert got.dtype == np.uint8 and got.shape == (h, w, 3)
    err = np.abs(got.astype(int) - smooth.astype(int))
    assert err.mean() < 3  # lossy but colour order preserved (a BGR/RGB swap would be ~100)
    assert_same(make_obs(images={}), decode(encode(make_obs(images={}), jpeg_quality=50)))


def test_encode_normalizes_convenient_inputs():
    obs = decode(encode(make_obs(state=[1, 2, 3], plan=np.ones((2, 3)), step=np.int64(5), wall_time=3)))
    assert obs.state.dtype == np.float32 and obs.plan.dtype == np.float32 and obs.step == 5
    hello = decode(encode(Hello("a", 0, features={"limits": np.array([1.0, 2.0]), "n": np.int32(3)})))
    assert hello.features == {"limits": [1.0, 2.0], "n": 3}


def test_decoded_arrays_are_read_only():
    obs = decode(encode(make_obs()))
    with pytest.raises(ValueError):
        obs.state[0] = 1.0


# --- encode refuses what cannot be represented ------------------------------------------------
@pytest.mark.parametrize(
    ("msg", "field", "reason"),
    [
        (lambda: make_chunk(actions=np.full((50, 6), np.nan, np.float32)), "actions", "nonfinite"),
        (lambda: make_obs(state=np.array([1.0, np.inf])), "state", "nonfinite"),
        (lambda: make_obs(state=np.array([object(), 1.0], dtype=object)), "state", "dtype"),
        (lambda: make_obs(images={"f": np.zeros((4, 4, 3), np.float32)}), "images.f", "dtype"),
        (lambda: make_obs(images={"f": np.zeros((4, 4), np.uint8)}), "images.f", "shape"),
        (lambda: make_chunk(actions=np.zeros((0, 6), np.float32)), "actions", "empty"),
        (lambda: make_obs(robot_id=""), "robot_id", "empty"),
        (lambda: make_obs(step=-1), "step", "range"),
        (lambda: make_obs(seq=2**64), "seq", "range"),
        (lambda: make_obs(task=b"bytes"), "task", "type"),
        (lambda: Hello("a", 0, features={"x": object()}), "features.x", "type"),
        (lambda: Config("a", 0, accepted=1), "accepted", "type"),
    ],
)
def test_encode_rejects_invalid_messages(msg, field, reason):
    with pytest.raises(ProtocolError) as info:
        encode(msg())
    assert (info.value.field, info.value.reason) == (field, reason)


def test_encode_rejects_non_messages_and_bad_quality():
    with pytest.raises(ProtocolError):
        encode({"robot_id": "a"})
    with pytest.raises(ValueError):
        encode(make_obs(), jpeg_quality=0)


# --- decode rejects bad input -----------------------------------------------------------------
def test_every_truncation_is_rejected():
    data = encode(make_obs(images={"f": np.zeros((2, 2, 3), np.uint8)}))
    for n in range(len(data)):
        reject(data[:n])
    assert reject(data[:-1]).reason == "truncated"
    assert reject(b"").reason == "truncated"


def test_trailing_and_random_bytes_are_rejected():
    assert reject(encode(make_chunk()) + b"\x00").reason == "trailing"
    for data in (b"\xc1", b"GET / HTTP/1.1\r\n\r\n", bytes(range(256)), RNG.bytes(4096)):
        reject(data)


def test_envelope_errors_name_the_field():
    good = wire(make_chunk())
    assert reject({**good, "v": 2}).reason == "version"
    assert reject({**good, "v": "1"}).reason == "version"
    assert reject({**good, "kind": "launch_missiles"}).reason == "kind"
    assert reject({**good, "body": [1, 2]}).field == "body"
    assert reject([good]).reason == "type"
    err = reject({k: v for k, v in good.items() if k != "v"})
    assert (err.field, err.reason) == ("v", "missing")
    assert reject({**good, "extra": 1}).reason == "unknown_field"


@pytest.mark.parametrize("field", ["robot_id", "seq", "step", "state", "images", "plan", "last_rtt_ms"])
def test_missing_and_unknown_fields(field):
    good = wire(make_obs())
    body = {k: v for k, v in good["body"].items() if k != field}
    err = reject({**good, "body": body})
    assert (err.field, err.reason) == (field, "missing")
    err = reject({**good, "body": {**good["body"], "pickle_payload": b"x"}})
    assert (err.field, err.reason) == ("pickle_payload", "unknown_field")


def _mutate(msg, path: tuple, value) -> dict:
    """The wire form of ``msg`` with ``body[path...]`` replaced by ``value``."""
    w = wire(msg)
    node = w["body"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return w


BAD_VALUES = [
    # (message factory, path in body, bad value, expected field, expected reason)
    (make_obs, ("seq",), "7", "seq", "type"),
    (make_obs, ("seq",), True, "seq", "type"),
    (make_obs, ("step",), -5, "step", "range"),
    (make_obs, ("step",), 1.5, "step", "type"),
    (make_obs, ("wall_time",), float("nan"), "wall_time", "nonfinite"),
    (make_obs, ("last_rtt_ms",), float("inf"), "last_rtt_ms", "nonfinite"),
    (make_obs, ("robot_id",), "", "robot_id", "empty"),
    (make_obs, ("robot_id",), "r" * 65, "robot_id", "too_large"),
    (make_obs, ("robot_id",), 5, "robot_id", "type"),
    (make_obs, ("task",), ["x"], "task", "type"),
    (make_obs, ("state", "dtype"), "float64", "state.dtype", "dtype"),
    (make_obs, ("state", "dtype"), "object", "state.dtype", "dtype"),
    (make_obs, ("state", "dtype"), "O", "state.dtype", "dtype"),
    (make_obs, ("state", "dtype"), "<f4", "state.dtype", "dtype"),
    (make_obs, ("state", "shape"), [7], "state.data", "shape"),
    (make_obs, ("state", "shape"), [2, 3], "state.shape", "shape"),
    (make_obs, ("state", "shape"), [-6], "state.shape", "type"),
    (make_obs, ("state", "shape"), "6", "state.shape", "type"),
    (make_obs, ("state", "data"), "abc", "state.data", "type"),
    (make_obs, ("state", "data"), np.full(6, np.nan, np.float32).tobytes(), "state", "nonfinite"),
    (make_obs, ("state",), [1.0, 2.0], "state", "type"),
    (make_obs, ("state", "pickle"), pickle.dumps(object), "state.pickle", "unknown_field"),
    (make_obs, ("plan", "data"), np.full(24, np.inf, np.float32).tobytes(), "plan", "nonfinite"),
    (make_obs, ("plan", "shape"), [24], "plan.shape", "shape"),
    (make_obs, ("extras", "velocity", "data"), np.full(6, np.nan, np.float32).tobytes(), "extras.velocity", "nonfinite"),
    (make_obs, ("extras", "velocity", "shape"), [2, 3], "extras.velocity.shape", "shape"),
    (make_obs, ("extras",), {"": {}}, "extras", "type"),
    (make_obs, ("images", "front", "dtype"), "float32", "images.front.dtype", "dtype"),
    (make_obs, ("images", "front", "shape"), [48, 64, 4], "images.front.shape", "shape"),
    (make_obs, ("images", "front", "shape"), [48, 32, 3], "images.front.data", "shape"),
    (make_obs, ("images", "front", "shape"), [48, 192], "images.front.shape", "shape"),
    (make_obs, ("images", "front", "shape"), [0, 64, 3], "images.front.shape", "shape"),
    (make_obs, ("images", "front", "codec"), "png", "images.front.codec", "codec"),
    (make_obs, ("images", "front"), b"\xff\xd8\xff", "images.front", "type"),
    (make_obs, ("images",), [], "images", "type"),
    (make_hist_obs, ("history",), {"0": {}}, "history", "type"),
    (make_hist_obs, ("history", 0), [118], "history.0", "type"),
    (make_hist_obs, ("history", 0, "images"), {}, "history.0.images", "unknown_field"),
    (make_hist_obs, ("history", 0, "step"), -1, "history.0.step", "range"),
    (make_hist_obs, ("history", 0, "step"), 119, "history.1.step", "range"),  # steps not increasing
    (make_hist_obs, ("history", 1, "step"), 120, "history.1.step", "range"),  # not before the observation
    (make_hist_obs, ("history", 0, "state", "data"), np.full(6, np.nan, np.float32).tobytes(), "history.0.state", "nonfinite"),
    (make_hist_obs, ("history", 0, "state", "shape"), [3], "history.0.state.data", "shape"),
    (make_hist_obs, ("history", 0, "state"), {"dtype": "float32", "shape": [3], "data": b"\0" * 12}, "history.0.state", "shape"),
    (make_hist_obs, ("history", 0, "state", "dtype"), "float64", "history.0.state.dtype", "dtype"),
    (make_hist_obs, ("history", 1, "extras", "velocity", "data"), np.full(6, np.inf, np.float32).tobytes(), "history.1.extras.velocity", "nonfinite"),
    (make_hist_obs, ("history", 1, "extras", "velocity"), {"dtype": "float32", "shape": [2], "data": b"\0" * 8}, "history.1.extras.velocity", "shape"),
    (make_hist_obs, ("history", 1, "extras", "spin"), {"dtype": "float32", "shape": [1], "data": b"\0" * 4}, "history.1.extras.spin", "unknown_field"),
    (make_hist_obs, ("history", 1, "extras"), {}, "history.1.extras.task_state", "missing"),
    (make_chunk, ("actions", "data"), np.full(300, np.nan, np.float32).tobytes(), "actions", "nonfinite"),
    (make_chunk, ("actions",), {"dtype": "float32", "shape": [0, 6], "data": b""}, "actions", "empty"),
    (make_chunk, ("actions", "shape"), [300, 0], "actions.data", "shape"),
    (make_chunk, ("actions", "dtype"), "int64", "actions.dtype", "dtype"),
    (make_chunk, ("model_ms",), "fast", "model_ms", "type"),
    (make_chunk, ("mode",), None, "mode", "type"),
    (lambda: Hello("a", 0), ("fps",), 0.0, "fps", "range"),
    (lambda: Hello("a", 0), ("features",), {"joint_names": "abc"}, "features.joint_names", "type"),
    (lambda: Hello("a", 0), ("features",), {"cameras": {"f": [480]}}, "features.cameras.f", "shape"),
    (lambda: Hello("a", 0), ("features",), {"x": b"raw"}, "features.x", "type"),
    (lambda: Hello("a", 0), ("features",), {"x": float("nan")}, "features.x", "nonfinite"),
    (lambda: Hello("a", 0), ("chunk_settings",), {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}, "chunk_settings.a.b.c.d.e.f.g.h", "too_large"),
    (lambda: Config("a", 0), ("accepted",), 1, "accepted", "type"),
    (lambda: Heartbeat("a", 0), ("wall_time",), -1.0, "wall_time", "range"),
    (lambda: Error("a", 0), ("code",), "c" * 100, "code", "too_large"),
]  # fmt: skip


@pytest.mark.parametrize(("factory", "path", "value", "field", "reason"), BAD_VALUES)
def test_bad_field_values_raise_protocol_error_naming_the_field(factory, path, value, field, reason):
    err = reject(_mutate(factory(), path, value))
    assert (err.field, err.reason) == (field, reason), str(err)
    assert field in str(err)


# --- observation history -----------------------------------------------------------------------
def test_history_is_optional_on_the_wire():
    """Absent (an older robot, or a policy without history) is empty; empty is not sent at all."""
    plain = make_obs()
    assert "history" not in wire(plain)["body"] and decode(encode(plain)).history == ()
    with_history = wire(make_hist_obs())
    assert [f["step"] for f in with_history["body"]["history"]] == [118, 119]
    assert set(with_history["body"]["history"][0]) == {"step", "state", "extras"}  # never images
    del with_history["body"]["history"]
    assert decode(msgpack.packb(with_history)).history == ()


def test_too_many_history_frames_are_rejected_before_decoding():
    nine = tuple(make_frame(100 + i) for i in range(9))
    with pytest.raises(ProtocolError) as info:
        encode(make_obs(history=nine))
    assert (info.value.field, info.value.reason) == ("history", "too_large")
    tree = wire(make_obs(history=nine[:8]))
    assert len(decode(msgpack.packb(tree)).history) == 8
    tree["body"]["history"].append({"step": 1, "state": b"not even an array", "extras": {}})
    err = reject(tree)  # the count is refused before any frame is looked at
    assert (err.field, err.reason) == ("history", "too_large")
    assert reject(encode(make_hist_obs()), Limits(max_history=1)).reason == "too_large"


@pytest.mark.parametrize(("history", "field", "reason"), [
    ((make_frame(119), make_frame(118)), "history.1.step", "range"),
    ((make_frame(118), make_frame(118)), "history.1.step", "range"),
    ((make_frame(120),), "history.0.step", "range"),
    ((make_frame(118, state=np.zeros(5, np.float32)),), "history.0.state", "shape"),
    ((make_frame(118, state=np.array([0, 0, 0, 0, 0, np.nan], np.float32)),), "history.0.state", "nonfinite"),
    ((make_frame(118, extras={"velocity": np.zeros(6, np.float32)}),), "history.0.extras.task_state", "missing"),
    ((make_frame(118, images={"front": np.zeros((4, 4, 3), np.uint8)}),), "history.0.images", "type"),
    (({"step": 118},), "history.0", "type"),
    (("frame",), "history.0", "type"),
])  # fmt: skip
def test_encode_rejects_an_invalid_history(history, field, reason):
    with pytest.raises(ProtocolError) as info:
        encode(make_obs(history=history))
    assert (info.value.field, info.value.reason) == (field, reason)


def test_object_dtype_and_extension_types_never_decode():
    # msgpack-numpy style: arrays as ext types or pickled bytes with an object dtype
    assert (
        reject(msgpack.packb({"v": 1, "kind": "heartbeat", "body": msgpack.ExtType(42, b"x")})).reason
        == "type"
    )
    arr = {"dtype": "|O", "shape": [1], "data": pickle.dumps([1])}
    assert reject(_mutate(make_obs(), ("state",), arr)).reason == "dtype"


def test_jpeg_payload_must_match_its_declared_shape():
    tree = msgpack.unpackb(
        encode(make_obs(images={"f": np.full((16, 16, 3), 128, np.uint8)}), jpeg_quality=80)
    )
    item = tree["body"]["images"]["f"]
    assert item["codec"] == "jpeg"
    for bad in (
        {**item, "shape": [4096, 4096, 3]},
        {**item, "shape": [8, 8, 3]},
        {**item, "data": b"\xff\xd8garbage"},
    ):
        tree["body"]["images"] = {"f": bad}
        err = reject(tree)
        assert err.field.startswith("images.f") and err.reason in ("codec", "too_large")
    tree["body"]["images"] = {"f": {**item, "data": item["data"][: len(item["data"]) // 3]}}
    try:  # a cut JPEG may still decode (grey tail); either way nothing but ProtocolError
        decode(msgpack.packb(tree))
    except ProtocolError:
        pass


def test_jpeg_frame_size_reads_the_header():
    import cv2

    img = np.zeros((30, 50, 3), np.uint8)
    for flags in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]):
        ok, buf = cv2.imencode(".jpg", img, flags)
        assert ok and frame_size(buf.tobytes()) == (30, 50)
    for data in (b"", b"\xff\xd8", b"\xff\xd8\xff\xc0\x00", b"\x89PNG\r\n", b"\xff\xd8\x00\x00\x00\x00"):
        assert frame_size(data) is None


def test_size_limits():
    small = Limits(
        max_bytes=4096, max_images=1, max_image_side=40, max_array_elems=100, max_str_len=64, max_extras=1
    )
    obs = make_obs(images={}, extras={}, plan=np.zeros((0, 6), np.float32))
    assert reject(encode(make_obs()), small).reason == "too_large"  # whole payload
    assert reject(encode(make_chunk()), small).field == "actions"  # 300 elements > 100
    two = {"a": np.zeros((8, 8, 3), np.uint8), "b": np.zeros((8, 8, 3), np.uint8)}
    assert reject(encode(Observation(**{**_fields(obs), "images": two})), small).field == "images"
    big = {"a": np.zeros((8, 48, 3), np.uint8)}
    assert reject(encode(Observation(**{**_fields(obs), "images": big})), small).field == "images.a"
    assert reject(encode(Observation(**{**_fields(obs), "task": "t" * 100})), small).reason == "too_large"
    assert decode(encode(obs), small).robot_id == "arm0"


def _fields(msg) -> dict:
    return {k: getattr(msg, k) for k in msg.__dataclass_fields__ if k != "KIND"}


def test_reject_counter_counts_every_reason_and_logs_sparsely(caplog):
    counter = RejectCounter("test")
    with caplog.at_level(logging.WARNING, logger="vlash.messages"):
        for _ in range(25):
            counter.reject(ProtocolError("state", "nonfinite"))
        counter.reject(ProtocolError("v", "version"))
    assert counter["nonfinite"] == 25 and counter["version"] == 1 and counter["dtype"] == 0
    assert counter.total() == 26
    assert len(caplog.records) == 3  # 1st and 10th nonfinite, 1st version
    assert "state: nonfinite" in caplog.records[0].getMessage()


# --- property tests: nothing but ProtocolError ever comes out of decode ------------------------
def _decode_or_protocol_error(data: bytes) -> None:
    try:
        decode(data)
    except ProtocolError as err:
        assert err.reason in REASONS and err.reason != "internal", err


FUZZ = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = [encode(m) for m in all_messages()] + [
    encode(make_obs(images={"f": np.zeros((8, 8, 3), np.uint8)}), jpeg_quality=70)
]


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_only_raise_protocol_error(data):
    _decode_or_protocol_error(data)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "cut"]), st.integers(0, 2**16), st.integers(0, 255)), min_size=1, max_size=6),
)  # fmt: skip
def test_mutated_messages_only_raise_protocol_error(seed, edits):
    data = bytearray(seed)
    for op, pos, byte in edits:
        pos %= max(len(data), 1)
        if op == "flip" and data:
            data[pos] ^= byte or 0xFF
        elif op == "insert":
            data[pos:pos] = bytes([byte])
        elif op == "delete" and data:
            del data[pos]
        elif op == "cut":
            del data[pos:]
    _decode_or_protocol_error(bytes(data))


PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8) | st.binary(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@FUZZ
@given(st.sampled_from(range(len(SEEDS))), st.data())
def test_structurally_mutated_messages_only_raise_protocol_error(index, data):
    """Replace one value anywhere in a valid message's wire tree by arbitrary plain data."""
    tree = msgpack.unpackb(SEEDS[index])
    node, target = tree, None
    for _ in range(data.draw(st.integers(1, 5))):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        if not children:
            break
        key, child = data.draw(st.sampled_from(children))
        target = (node, key)
        if not isinstance(child, dict | list) or data.draw(st.booleans()):
            break
        node = child
    if target is not None:
        target[0][target[1]] = data.draw(PLAIN)
    _decode_or_protocol_error(msgpack.packb(tree))


@FUZZ
@given(PLAIN)
def test_arbitrary_msgpack_objects_only_raise_protocol_error(obj):
    _decode_or_protocol_error(msgpack.packb(obj))
