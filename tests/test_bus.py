"""The ZeroMQ bus with real sockets on 127.0.0.1: routing, newest-only, dead and restarted peers,
malformed traffic, loopback-only without keys, CurveZMQ, and a control side that never blocks.

Tests check counts and order; waits are bounded only so a broken build fails instead of hanging.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Callable, Iterator

import msgpack
import numpy as np
import pytest
import zmq

from vlash.bus import (
    ControlEndpoint,
    CurveConfig,
    InferenceEndpoint,
    InsecureEndpointError,
    generate_keypair,
    is_loopback,
    load_keypair,
    save_keypair,
)
from vlash.cli import main as vlash_main
from vlash.messages import ActionChunk, Config, Error, Heartbeat, Hello, Limits, Observation, encode

WAIT_S = 10.0  # generous upper bound on any wait: a failure, never a measurement


def wait_for(cond: Callable[[], bool], *pumps: Callable[[], object], what: str = "condition") -> None:
    """Pump the given endpoints until ``cond()`` holds."""
    deadline = time.monotonic() + WAIT_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        for pump in pumps:
            pump()
        time.sleep(0.002)


def obs(robot: str, seq: int, state: float = 0.0) -> Observation:
    return Observation(robot, seq, seq, time.time(), np.full(6, state, np.float32))


def chunk(robot: str, obs_seq: int, value: float) -> ActionChunk:
    return ActionChunk(
        robot, obs_seq, obs_seq, obs_seq, obs_seq, obs_seq + 1, np.full((5, 6), value, np.float32)
    )


def send(client: ControlEndpoint, msg) -> None:
    """Send, retrying while the tiny send queue is momentarily full."""
    wait_for(lambda: client.send(msg), what=f"room to send {msg.KIND}")


class Inbox:
    """Collects what a control endpoint receives."""

    def __init__(self, client: ControlEndpoint) -> None:
        self.client, self.messages = client, []

    def pump(self) -> None:
        self.messages.extend(self.client.poll())

    def of(self, kind: type) -> list:
        return [m for m in self.messages if isinstance(m, kind)]


@pytest.fixture
def server() -> Iterator[InferenceEndpoint]:
    bus = InferenceEndpoint("tcp://127.0.0.1:*", heartbeat_timeout_s=30.0)
    yield bus
    bus.close()


@pytest.fixture
def clients() -> Iterator[Callable[..., ControlEndpoint]]:
    made: list[ControlEndpoint] = []

    def make(endpoint: str, robot_id: str, **kwargs) -> ControlEndpoint:
        made.append(ControlEndpoint(endpoint, robot_id, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def claim(server: InferenceEndpoint, client: ControlEndpoint) -> None:
    """``client`` says Hello, so the bus binds its robot id to it (the server's answer is not needed)."""
    send(client, Hello(client.robot_id, 0))
    hellos: list[Hello] = []
    wait_for(lambda: hellos, server.poll, lambda: hellos.extend(server.hellos()), what="Hello")


def handshake(server: InferenceEndpoint, client: ControlEndpoint) -> Config:
    """Hello from ``client``; the test plays the inference server and accepts it."""
    inbox = Inbox(client)
    send(client, Hello(client.robot_id, 0, {"joint_names": ["j"]}, 30.0, "vlash", {}))
    hellos: list[Hello] = []
    wait_for(lambda: hellos, server.poll, lambda: hellos.extend(server.hellos()), what="Hello")
    assert [h.robot_id for h in hellos] == [client.robot_id]
    assert server.send(client.robot_id, Config(client.robot_id, 0, accepted=True, policy={}))
    wait_for(lambda: inbox.of(Config), server.poll, inbox.pump, what="Config")
    return inbox.of(Config)[0]


# --- routing --------------------------------------------------------------------------------
def test_two_robots_share_one_endpoint_and_get_only_their_own_chunks(server, clients):
    a, b = clients(server.endpoint, "arm_a"), clients(server.endpoint, "arm_b")
    assert handshake(server, a).accepted and handshake(server, b).accepted
    send(a, obs("arm_a", 1, 1.0))
    send(b, obs("arm_b", 1, 2.0))
    got: dict[str, Observation] = {}
    wait_for(
        lambda: len(got) == 2, server.poll, lambda: got.update(server.latest()), what="both observations"
    )
    assert got["arm_a"].state[0] == 1.0 and got["arm_b"].state[0] == 2.0
    assert server.robots() == ["arm_a", "arm_b"]
    for i in range(3):
        assert server.send("arm_a", chunk("arm_a", i, 10.0))
    assert server.send("arm_b", chunk("arm_b", 7, 20.0))
    for robot in ("arm_a", "arm_b"):  # per-connection order: the marker comes after the chunks
        assert server.send(robot, Error(robot, 99, "marker", ""))
    inbox_a, inbox_b = Inbox(a), Inbox(b)
    wait_for(lambda: inbox_a.of(Error) and inbox_b.of(Error), inbox_a.pump, inbox_b.pump, what="markers")
    assert [c.chunk_id for c in inbox_a.of(ActionChunk)] == [0, 1, 2]
    assert all(c.robot_id == "arm_a" and c.actions[0, 0] == 10.0 for c in inbox_a.of(ActionChunk))
    assert [(c.robot_id, c.chunk_id, c.actions[0, 0]) for c in inbox_b.of(ActionChunk)] == [
        ("arm_b", 7, 20.0)
    ]


def test_only_the_newest_observation_is_kept(server, clients):
    a = clients(server.endpoint, "arm_a")
    claim(server, a)
    for seq in range(1, 6):
        send(a, obs("arm_a", seq))
    wait_for(lambda: server.counters.get("observations", 0) == 5, server.poll, what="5 observations")
    newest = server.latest()
    assert list(newest) == ["arm_a"] and newest["arm_a"].seq == 5
    assert server.counters["dropped_stale"] == 4
    assert server.latest() == {}  # popped: never served twice


def test_unknown_robot_is_counted_not_sent(server):
    assert not server.send("ghost", chunk("ghost", 1, 0.0))
    assert server.counters["unknown_robot"] == 1 and server.counters.get("sent", 0) == 0
    with pytest.raises(ValueError):
        server.send("arm_a", chunk("ghost", 1, 0.0))  # a programming error, not bad input


def test_a_dropped_peer_becomes_unroutable(server, clients):
    gone, stays = clients(server.endpoint, "gone"), clients(server.endpoint, "stays")
    handshake(server, gone)
    handshake(server, stays)
    gone.close()
    wait_for(lambda: not server.send("gone", chunk("gone", 1, 0.0)), server.poll, what="send to fail")
    assert server.counters["unroutable"] == 1 and server.robots() == ["stays"]
    assert not server.send("gone", chunk("gone", 2, 0.0))  # forgotten until it speaks again
    assert server.counters["unknown_robot"] == 1
    assert server.send("stays", chunk("stays", 1, 0.0))


def test_a_silent_peer_times_out_and_comes_back(clients):
    with InferenceEndpoint("tcp://127.0.0.1:*", heartbeat_timeout_s=0.3, heartbeat_interval_s=10.0) as server:
        quiet = clients(server.endpoint, "quiet")
        claim(server, quiet)
        send(quiet, obs("quiet", 1))  # its last word for a while
        wait_for(lambda: server.counters.get("observations"), server.poll, what="observation")
        wait_for(
            lambda: server.counters.get("robots_timed_out"), server.poll, what="silent robot to time out"
        )
        assert server.robots() == [] and server.latest() == {}  # its stale observation went too
        assert server.counters["dropped_stale"] == 1
        assert not server.send("quiet", chunk("quiet", 1, 0.0))
        send(quiet, Heartbeat("quiet", 1, time.time()))  # dropped: it must claim its id again
        inbox = Inbox(quiet)
        wait_for(lambda: inbox.of(Error), server.poll, inbox.pump, what="unknown_robot")
        assert inbox.of(Error)[0].code == "unknown_robot" and server.robots() == []
        claim(server, quiet)  # back, and gets mail again
        assert "quiet" in server.robots()
        assert server.send("quiet", chunk("quiet", 2, 3.0))
        wait_for(lambda: inbox.of(ActionChunk), inbox.pump, what="chunk after return")


def test_a_robot_id_is_owned_by_its_first_hello_and_taken_over_only_once_the_owner_is_silent(clients):
    with InferenceEndpoint("tcp://127.0.0.1:*", heartbeat_timeout_s=0.5, heartbeat_interval_s=10.0) as server:
        owner = clients(server.endpoint, "arm_a")
        handshake(server, owner)
        stranger = clients(server.endpoint, "arm_a")
        inbox = Inbox(stranger)
        for i in range(5):  # while the owner keeps talking, nothing the stranger says gets through
            send(owner, Heartbeat("arm_a", i, time.time()))
            send(stranger, Hello("arm_a", 0, {}, 30.0, "sync"))
            send(stranger, obs("arm_a", 100 + i, 9.0))
        wait_for(lambda: len(inbox.of(Error)) == 10, server.poll, inbox.pump, what="ten refusals")
        assert {e.code for e in inbox.of(Error)} == {"id_taken"} and server.counters["rejected_id_taken"] == 10
        assert server.hellos() == [] and server.latest() == {}  # the server never saw them
        assert server.send("arm_a", chunk("arm_a", 1, 5.0))
        mine = Inbox(owner)
        wait_for(lambda: mine.of(ActionChunk), mine.pump, what="chunk at the owner")
        assert not inbox.of(ActionChunk)
        owner.close()  # the robot died; once it has been silent for the timeout, a Hello takes over
        claimed: list[Hello] = []

        def hello_again() -> None:
            send(stranger, Hello("arm_a", 0, {}, 30.0, "sync"))
            server.poll()
            claimed.extend(server.hellos())

        wait_for(lambda: claimed, hello_again, what="takeover after the owner went silent")
        assert server.counters["robots_timed_out"] == 1 and server.robots() == ["arm_a"]
        assert server.send("arm_a", chunk("arm_a", 2, 7.0))
        wait_for(lambda: inbox.of(ActionChunk), inbox.pump, what="chunk at the new owner")
        assert inbox.of(ActionChunk)[0].actions[0, 0] == 7.0


def test_a_flood_of_fresh_robot_ids_claims_at_most_max_robots(clients):
    with InferenceEndpoint("tcp://127.0.0.1:*", heartbeat_timeout_s=30.0, max_robots=5) as server:
        flooder = clients(server.endpoint, "x0")
        for i in range(12):
            flooder.robot_id = f"x{i}"  # one connection speaking for many ids
            send(flooder, Hello(f"x{i}", 0))
        claimed: list[Hello] = []
        wait_for(lambda: server.counters["received"] >= 12, server.poll, lambda: claimed.extend(server.hellos()),
                 what="all Hellos")
        claimed.extend(server.hellos())
        assert [h.robot_id for h in claimed] == [f"x{i}" for i in range(5)] and len(server.robots()) == 5
        assert server.counters["rejected_too_many_robots"] == 7


def test_an_observation_for_an_id_nobody_claimed_is_answered_unknown_robot(server, clients):
    ghost = clients(server.endpoint, "ghost")
    inbox = Inbox(ghost)
    send(ghost, obs("ghost", 1))
    wait_for(lambda: inbox.of(Error), server.poll, inbox.pump, what="unknown_robot")
    assert inbox.of(Error)[0].code == "unknown_robot" and server.latest() == {} and server.robots() == []


# --- bad input ------------------------------------------------------------------------------
def test_malformed_messages_are_counted_and_the_server_keeps_serving(clients):
    limits = Limits(max_bytes=64 * 1024)
    with InferenceEndpoint("tcp://127.0.0.1:*", heartbeat_timeout_s=30.0, limits=limits) as server:
        ctx = zmq.Context()
        raw = ctx.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(server.endpoint)
        good_wire = msgpack.unpackb(encode(obs("evil", 1)))
        bad = [
            b"",
            b"\xc1",
            b"\x00garbage\xff",
            os.urandom(1000),
            encode(obs("evil", 1))[:-3],
            msgpack.packb({**good_wire, "v": 99}),
            msgpack.packb({**good_wire, "kind": "shell"}),
            encode(obs("evil", 1)).replace(b"float32", b"float64"),
            encode(Observation("evil", 1, 1, 0.0, np.zeros(6), {"f": np.zeros((200, 200, 3), np.uint8)})),
            encode(chunk("evil", 1, 0.0)),  # wrong direction
        ]
        for payload in bad:
            raw.send(payload)
        raw.send_multipart([b"two", b"frames"])
        try:
            wait_for(lambda: server.counters["rejected"] == len(bad) + 1, server.poll, what="all rejections")
        finally:
            raw.close()
            ctx.term()
        c = server.counters
        for reason in (
            "truncated",
            "malformed",
            "version",
            "kind",
            "dtype",
            "too_large",
            "direction",
            "frames",
        ):
            assert c[f"rejected_{reason}"] >= 1, reason
        assert server.robots() == [] and server.latest() == {}
        a = clients(server.endpoint, "arm_a")  # still serving
        claim(server, a)
        send(a, obs("arm_a", 1))
        wait_for(lambda: server.latest(), server.poll, what="valid observation after garbage")


def test_raw_tcp_garbage_and_half_sent_messages_do_not_disturb_the_server(server, clients):
    port = int(server.endpoint.rsplit(":", 1)[1])
    greeting = b"\xff" + bytes(8) + b"\x01\x7f\x03\x00NULL"  # a ZMTP greeting, cut short
    for payload in (greeting, os.urandom(512), b"\xff" * 10 + bytes(100)):
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(payload)  # ... and vanish mid-message
    a = clients(server.endpoint, "arm_a")
    claim(server, a)
    send(a, obs("arm_a", 1))
    wait_for(lambda: server.latest(), server.poll, what="valid observation after raw garbage")
    assert server.robots() == ["arm_a"]


def test_control_side_rejects_bad_messages_from_the_server(clients):
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    try:
        client = clients(f"tcp://127.0.0.1:{port}", "arm_a")
        send(client, Hello("arm_a", 0))
        assert router.poll(int(WAIT_S * 1000))
        identity, _ = router.recv_multipart()
        for payload in (
            b"\xc1",
            encode(chunk("arm_b", 1, 0.0)),
            encode(obs("arm_a", 1)),
            encode(chunk("arm_a", 2, 1.0)),
        ):
            router.send_multipart([identity, payload])
        router.send_multipart([identity, b"two", b"frames"])
        inbox = Inbox(client)
        wait_for(lambda: client.counters["rejected"] == 4, inbox.pump, what="control-side rejections")
        assert [(type(m), m.chunk_id) for m in inbox.messages] == [(ActionChunk, 2)]
        c = client.counters
        assert c["rejected_wrong_robot"] == c["rejected_direction"] == c["rejected_frames"] == 1
        assert c["rejected_malformed"] == 1
    finally:
        router.close()
        ctx.term()


def test_invalid_outgoing_messages_are_counted_not_sent(server, clients):
    a = clients(server.endpoint, "arm_a")
    assert not a.send(obs("arm_a", 1, float("nan")))
    assert a.counters["unsendable_nonfinite"] == 1 and a.counters.get("sent", 0) == 0


def test_hellos_are_queued_for_the_server_in_arrival_order_and_never_answered_by_the_bus(server, clients):
    a, b = clients(server.endpoint, "arm_a"), clients(server.endpoint, "arm_b")
    send(a, Hello("arm_a", 0, {}, 30.0, "sync"))
    hellos: list[Hello] = []
    wait_for(lambda: hellos, server.poll, lambda: hellos.extend(server.hellos()), what="first Hello")
    send(b, Hello("arm_b", 0, {}, 50.0, "vlash"))
    send(a, Hello("arm_a", 0, {}, 30.0, "naive"))
    wait_for(lambda: len(hellos) == 3, server.poll, lambda: hellos.extend(server.hellos()), what="three Hellos")
    # in arrival order per connection (ZeroMQ fair-queues between connections, so only that order is defined)
    assert [h.mode for h in hellos if h.robot_id == "arm_a"] == ["sync", "naive"]
    assert [h.mode for h in hellos if h.robot_id == "arm_b"] == ["vlash"]
    assert server.hellos() == [] and server.counters["hellos"] == 3
    assert a.poll(50) == [] and b.poll(50) == []  # the transport decides nothing: no Config without a server


# --- never blocking, heartbeats ---------------------------------------------------------------
def test_control_send_never_blocks_without_a_server(clients, free_port):
    client = clients(f"tcp://127.0.0.1:{free_port}", "arm_a", send_queue=4)
    results = [client.send(obs("arm_a", i)) for i in range(100)]
    assert sum(results) <= 4 and client.counters["send_dropped"] == 100 - sum(results)
    assert client.poll() == [] and client.seconds_since_heard() == float("inf") and not client.server_alive
    client.maybe_heartbeat()
    client.close()  # linger 0: returns although messages are queued


def test_heartbeats_both_ways(clients):
    with InferenceEndpoint(
        "tcp://127.0.0.1:*", heartbeat_timeout_s=30.0, heartbeat_interval_s=0.01
    ) as server:
        a = clients(server.endpoint, "arm_a", heartbeat_interval_s=0.01)
        claim(server, a)
        inbox = Inbox(a)
        wait_for(
            lambda: a.maybe_heartbeat() or a.counters.get("heartbeats_sent", 0) > 0, what="heartbeat send"
        )
        wait_for(lambda: server.counters.get("heartbeats_received", 0) >= 1, server.poll, what="heartbeat in")
        wait_for(lambda: inbox.of(Heartbeat), server.poll, inbox.pump, what="heartbeat out")
        assert a.server_alive and a.seconds_since_heard() < WAIT_S
        assert server.seconds_since_heard("arm_a") < WAIT_S and server.seconds_since_heard("x") == float(
            "inf"
        )
        assert not a.maybe_heartbeat(now=time.monotonic() - 1.0)  # not due yet


# --- loopback only without keys; CurveZMQ -----------------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://127.8.9.10:5555", True),
        ("tcp://localhost:5555", True),
        ("tcp://[::1]:5555", True),
        ("ipc:///tmp/vlash.sock", True),
        ("inproc://bus", True),
        ("tcp://*:5555", False),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://192.168.1.20:5555", False),
        ("tcp://robot.example.com:5555", False),
        ("tcp://eth0:5555", False),
        ("tcp://127.0.0.1:0;10.0.0.2:5555", False),
        ("udp://127.0.0.1:5555", False),
    ],
)
def test_is_loopback(endpoint, loopback):
    assert is_loopback(endpoint) is loopback


@pytest.mark.parametrize("endpoint", ["tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.1.2.3:5555"])
def test_non_loopback_endpoints_refuse_without_keys(endpoint):
    with pytest.raises(InsecureEndpointError, match="CurveZMQ"):
        InferenceEndpoint(endpoint)
    with pytest.raises(InsecureEndpointError, match="vlash keys"):
        ControlEndpoint(endpoint, "arm_a")


@pytest.fixture
def keys():
    return {name: generate_keypair() for name in ("server", "robot", "intruder")}


def _round_trip_works(server: InferenceEndpoint, client: ControlEndpoint) -> bool:
    config = handshake(server, client)
    return config.accepted and client.robot_id in server.robots()


@pytest.mark.parametrize("allow_list", [False, True])
def test_curve_wrong_key_gets_nothing_through(clients, keys, allow_list):
    allowed = [keys["robot"].public] if allow_list else None
    curve = CurveConfig.server(keys["server"], allowed_client_keys=allowed)
    with InferenceEndpoint("tcp://127.0.0.1:*", curve=curve, heartbeat_timeout_s=30.0) as server:
        intruders = [
            clients(server.endpoint, "plain"),  # no encryption at all
            clients(
                server.endpoint, "forged", curve=CurveConfig.client(keys["intruder"], keys["intruder"].public)
            ),
        ]
        if allow_list:  # knows the server key, but its own key is not on the list
            intruders.append(
                clients(
                    server.endpoint,
                    "unlisted",
                    curve=CurveConfig.client(keys["intruder"], keys["server"].public),
                )
            )
        for intruder in intruders:
            for seq in range(3):
                intruder.send(obs(intruder.robot_id, seq))
        robot = clients(
            server.endpoint, "robot", curve=CurveConfig.client(keys["robot"], keys["server"].public)
        )
        assert _round_trip_works(server, robot)
        for seq in range(20):  # let the intruders' handshakes run their course meanwhile
            send(robot, obs("robot", seq))
            wait_for(lambda: server.latest(), server.poll, what="allowed robot's observation")
        for intruder in intruders:
            intruder.maybe_heartbeat()
        assert server.robots() == ["robot"]
        assert server.counters["robots_joined"] == 1 and server.counters["rejected"] == 0
        assert all(i.poll() == [] and i.seconds_since_heard() == float("inf") for i in intruders)


def test_curve_allows_non_loopback_endpoints(keys):
    from vlash.curve import check_endpoint

    check_endpoint("tcp://0.0.0.0:5555", CurveConfig.server(keys["server"]))  # does not raise
    with pytest.raises(ValueError, match="server_public_key"):
        with ControlEndpoint(
            "tcp://10.0.0.1:5555", "a", curve=CurveConfig(keys["robot"].public, keys["robot"].secret)
        ):
            pass
    with pytest.raises(ValueError, match="Z85"):
        CurveConfig(b"short", keys["robot"].secret)


def test_key_files_round_trip_with_private_secret(tmp_path, keys):
    public_path, secret_path = save_keypair(tmp_path, "robot0", keys["robot"])
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    assert load_keypair(secret_path) == keys["robot"]
    assert load_keypair(public_path) == (keys["robot"].public, None)
    assert b"secret" not in public_path.read_bytes()
    with pytest.raises(FileExistsError):
        save_keypair(tmp_path, "robot0")
    save_keypair(tmp_path, "robot0", overwrite=True)
    assert load_keypair(secret_path) != keys["robot"]
    with pytest.raises(ValueError):
        load_keypair(tmp_path / "missing.key")


def test_vlash_keys_command(tmp_path, capsys):
    assert vlash_main(["keys", "--out", str(tmp_path / "k"), "--name", "server"]) == 0
    pair = load_keypair(tmp_path / "k" / "server.key_secret")
    assert pair.secret is not None and load_keypair(tmp_path / "k" / "server.key").public == pair.public
    assert stat.S_IMODE((tmp_path / "k" / "server.key_secret").stat().st_mode) == 0o600
    assert vlash_main(["keys", "--out", str(tmp_path / "k"), "--name", "server"]) == 1
    assert "--force" in capsys.readouterr().err


def test_curve_robot_keys_bind_each_robot_id_to_its_client_key(clients, keys):
    arm2 = generate_keypair()
    curve = CurveConfig.server(keys["server"], robot_keys={"arm1": keys["robot"].public, "arm2": [arm2.public]})
    assert set(curve.allowed_client_keys) == {keys["robot"].public, arm2.public}  # the allow-list follows
    with InferenceEndpoint("tcp://127.0.0.1:*", curve=curve, heartbeat_timeout_s=30.0) as server:
        arm1 = clients(server.endpoint, "arm1", curve=CurveConfig.client(keys["robot"], keys["server"].public))
        assert _round_trip_works(server, arm1)
        # arm1's key is valid and allow-listed, but it may not speak for arm2 nor for an unbound id
        posers = [
            clients(server.endpoint, robot_id, curve=CurveConfig.client(keys["robot"], keys["server"].public))
            for robot_id in ("arm2", "arm3")
        ]
        inboxes = [Inbox(p) for p in posers]
        for poser in posers:
            send(poser, Hello(poser.robot_id, 0, {"joint_names": ["j"]}, 30.0, "vlash", {}))
            send(poser, obs(poser.robot_id, 1))
        wait_for(lambda: all(len(i.of(Error)) >= 2 for i in inboxes), server.poll, *(i.pump for i in inboxes),
                 what="refusals")
        assert all(e.code == "wrong_key" for i in inboxes for e in i.of(Error))
        assert all(i.of(Config) == [] for i in inboxes)
        assert server.rejects["wrong_key"] == 4 and server.counters["rejected"] == 4
        assert server.robots() == ["arm1"] and server.latest() == {}
        # arm2's own key does speak for arm2
        owner = clients(server.endpoint, "arm2", curve=CurveConfig.client(arm2, keys["server"].public))
        assert _round_trip_works(server, owner)
        assert server.robots() == ["arm1", "arm2"]


def test_curve_robot_keys_need_keys_per_robot(keys):
    with pytest.raises(ValueError, match="robot_keys\\['arm1'\\]: no key"):
        CurveConfig.server(keys["server"], robot_keys={"arm1": []})
    with pytest.raises(ValueError, match="Z85"):
        CurveConfig.server(keys["server"], robot_keys={"arm1": b"short"})
    assert CurveConfig.server(keys["server"]).may_speak_for("anyone", None)  # no binding: anyone allowed
