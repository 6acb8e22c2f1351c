"""Size limits: a hostile message cannot make a receiver allocate what it claims.

In process, the decoder rejects messages whose headers claim huge strings, byte strings, arrays,
maps or images, with a tracemalloc peak far below the claimed size. Against a live ``vlash
serve``, messages just over the limit are read and rejected as ``too_large`` and a frame whose
header claims a terabyte gets its sender disconnected by libzmq before anything is allocated;
the server's RSS does not grow and its robot keeps being served.
"""

from __future__ import annotations

import socket
import struct
import tracemalloc

import msgpack
import numpy as np
import pytest
import zmq

from tests.faults.procs import serve_counters, wait_until, write_launch
from vlash.messages import Config, Hello, Observation, ProtocolError, decode, encode
from vlash.wire_fields import Limits

LIMITS = Limits()


def _obs_body() -> dict:
    obs = Observation(robot_id="r", seq=1, step=1, wall_time=1.0, state=np.zeros(2, np.float32))
    return msgpack.unpackb(encode(obs))


def _with(path: tuple, value) -> bytes:
    msg = _obs_body()
    node = msg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return msgpack.packb(msg)


HOSTILE = {
    # headers that claim far more than is sent
    "bin32 claims 4 GiB": b"\x83\xa1v\x01\xa4kind\xabobservation\xa4body\xc6\xff\xff\xff\xff" + b"x" * 64,
    "str32 claims 4 GiB": b"\xdb\xff\xff\xff\xff" + b"x" * 64,
    "array32 claims 4G items": b"\xdd\xff\xff\xff\xff" + b"\x00" * 64,
    "map32 claims 4G entries": b"\xdf\xff\xff\xff\xff" + b"\x00" * 64,
    # well-formed, but the shape claims more elements than the limit
    "state shape 2^40": _with(("body", "state", "shape"), [1 << 40]),
    "plan shape 2^20 x 2^20": _with(("body", "plan", "shape"), [1 << 20, 1 << 20]),
    "image 60000x60000": _with(("body", "images"), {"cam": {"dtype": "uint8", "shape": [60000, 60000, 3], "data": b""}}),
    "jpeg claims 20000x20000": _with(
        ("body", "images"), {"cam": {"codec": "jpeg", "dtype": "uint8", "shape": [20000, 20000, 3], "data": b"\xff\xd8"}}
    ),
    "many extras": _with(("body", "extras"), {f"e{i}": {"dtype": "float32", "shape": [1], "data": b"\0" * 4} for i in range(1000)}),
    "deep features": msgpack.packb({"v": 1, "kind": "hello", "body": {"robot_id": "r", "seq": 0, "features": [[[[[[[[[[[[1]]]]]]]]]]]]}}),
    "message over max_bytes": b"\x00" * (LIMITS.max_bytes + 1),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_decoder_rejects_claims_without_allocating_them(name):
    data = HOSTILE[name]
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError):
            decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024 + len(data), f"{name}: peak {peak} bytes"


def _zmtp_giant_frame(port: int, claimed: int) -> bool:
    """Speak ZMTP 3.0 (NULL mechanism) as a DEALER and send a frame header claiming ``claimed`` bytes.

    A small garbage frame goes first (the server counts it: the handshake worked). Returns True
    once the server closed the connection.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" * 32)
        _recv_exact(s, 64)  # the server's greeting
        props = b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
        ready = b"\x05READY" + props
        s.sendall(bytes([0x04, len(ready)]) + ready)
        flags = _recv_exact(s, 1)[0]  # the server's READY command
        size = struct.unpack(">Q", _recv_exact(s, 8))[0] if flags & 0x02 else _recv_exact(s, 1)[0]
        _recv_exact(s, size)
        s.sendall(bytes([0x00, 10]) + b"\xc1" * 10)  # one small frame: the server counts it as malformed
        s.sendall(bytes([0x02]) + struct.pack(">Q", claimed) + b"\0" * 4096)
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return True  # recv returned b"" (or the peer reset): the server hung up on us


def _recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed during the handshake")
        out += chunk
    return out


def test_oversized_messages_do_not_grow_the_server(tmp_path, procs):
    launch = write_launch(tmp_path)
    endpoint = launch.read_text().split("endpoint: ")[1].split()[0]
    port = int(endpoint.rsplit(":", 1)[1])
    server = procs.serve(launch)
    control = procs.control(launch, "arm", tmp_path / "arm", None)
    wait_until(lambda: control.status["chunks"] >= 2, what="first chunks")
    before_kb = server.rss_kb()
    # 1) messages just over the decoder's limit: read, rejected as too_large, freed
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDTIMEO, 60_000)  # a hang guard: the server drains its queue as it goes
    sock.setsockopt(zmq.RCVTIMEO, 60_000)
    sock.connect(endpoint)
    big = b"\x00" * (LIMITS.max_bytes + 1)
    n_big = 48  # 800 MB in all
    try:
        for _ in range(n_big):
            sock.send(big, copy=False)
        # barrier: the server handles one connection's messages in order, so once our Hello is
        # answered every big message has been read (none is left to a linger timeout)
        sock.send(encode(Hello("flooder", 0)))
        while not isinstance(decode(sock.recv()), Config):
            pass
    finally:
        sock.close(linger=0)
        ctx.term()
    # 2) a frame claiming 1 TiB: libzmq's MAXMSGSIZE drops the connection at the header
    for _ in range(3):
        assert _zmtp_giant_frame(port, 1 << 40)
    served_before = control.status["chunks"]
    wait_until(lambda: control.status["chunks"] >= served_before + 2, what="chunks after the attack")
    after_kb = server.rss_kb()
    assert control.stop() == 0 and server.stop() == 0
    _, bus = serve_counters(server)
    assert bus["rejected_too_large"] == n_big
    assert bus["rejected_malformed"] == 3  # the raw connections really spoke ZMTP to the server
    # bounded by the receive queue (16 messages), not by the attack: a loaded machine lets the
    # queue fill and the allocator keep some of it, so the bound is half the volume sent
    assert (after_kb - before_kb) / 1024 < n_big * 16 / 2, f"server RSS grew {before_kb} -> {after_kb} kB"
    assert control.summary["counters"].get("bus_rejected", 0) == 0


ZERO_BY_HUGE = _with(("body", "plan", "shape"), [0, 2**63 - 1])  # found by `vlash bench fuzz`


def test_zero_size_array_with_a_huge_dimension_is_contained():
    with pytest.raises(ProtocolError):
        decode(ZERO_BY_HUGE)


def test_zero_size_array_with_a_huge_dimension_is_rejected_as_too_large():
    with pytest.raises(ProtocolError) as err:
        decode(ZERO_BY_HUGE)
    assert err.value.reason == "too_large" and "shape" in err.value.field
