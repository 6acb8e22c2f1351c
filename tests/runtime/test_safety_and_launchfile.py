import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from vlash.factory import build, check_arguments, resolve
from vlash.launchfile import FactorySpec, LaunchError, check_factories, parse_launch
from vlash.runlog import RunLog, read_jsonl
from vlash.safety import SafetyFilter

LOW, HIGH = np.array([-1.0, -1.0]), np.array([1.0, 1.0])


def test_safety_filter_never_passes_invalid_actions():
    f = SafetyFilter(LOW, HIGH, max_step=[0.1, 0.1])
    last = np.array([0.0, 0.0], np.float32)
    assert f.apply([np.nan, 0.0], last).tolist() == [0.0, 0.0]
    assert f.apply([np.inf, 0.0], last).tolist() == [0.0, 0.0]
    assert f.apply([0.0, 0.0, 0.0], last).tolist() == [0.0, 0.0]
    assert f.apply("garbage", last).tolist() == [0.0, 0.0]
    np.testing.assert_allclose(f.apply([5.0, -0.05], last), [0.1, -0.05])
    assert f.counters == {"nonfinite": 2, "wrong_shape": 1, "invalid": 1, "clipped": 1, "rate_limited": 1}
    for _ in range(100):  # a flood of random garbage still only yields in-limit, finite actions
        out = f.apply(np.random.default_rng(0).normal(0, 1e6, 2), last)
        assert np.all(np.isfinite(out)) and np.all(out >= LOW) and np.all(out <= HIGH)


def test_safety_filter_rejects_bad_limits():
    with pytest.raises(ValueError):
        SafetyFilter([1.0], [0.0])


def good_launch(**over):
    data = {
        "fps": 30,
        "mode": "vlash",
        "inference": {"policy": {"factory": "tests.core.toy:StampPolicy", "chunk_size": 8}},
        "robots": [{"id": "a", "driver": {"factory": "x.y:Z"}}],
    }
    data.update(over)
    return data


def test_launch_file_validation_names_the_key():
    spec = parse_launch(good_launch())
    assert spec.endpoint.startswith("tcp://127.0.0.1:") and spec.robots[0].mode == "vlash"
    with pytest.raises(LaunchError, match="unknown key 'colour'"):
        parse_launch(good_launch(colour="red"))
    with pytest.raises(LaunchError, match="missing required key 'inference'"):
        parse_launch({k: v for k, v in good_launch().items() if k != "inference"})
    bad_robot = good_launch(robots=[{"id": "a", "driver": {"factory": "x.y:Z"}, "speed": 3}])
    with pytest.raises(LaunchError, match=r"robots\[0\]: unknown key 'speed'"):
        parse_launch(bad_robot)
    with pytest.raises(LaunchError, match="mode"):
        parse_launch(good_launch(mode="turbo"))
    with pytest.raises(LaunchError, match="factory"):
        parse_launch(good_launch(robots=[{"id": "a", "driver": {"task": "reach"}}]))


def test_launch_file_becomes_typed_configs():
    data = good_launch(
        fps=50,
        inference={"policy": {"factory": "tests.core.toy:StampPolicy", "chunk_size": 8}, "fixed_delay_steps": 2},
        robots=[{"id": "a", "driver": {"factory": "x.y:Z", "task": "reach"}, "chunk_size": 20, "mode": "naive"}],
    )
    spec = parse_launch(data)
    robot = spec.robots[0]
    assert robot.driver == FactorySpec("x.y:Z", {"task": "reach"})
    assert (robot.chunk_size, robot.execution_horizon, robot.quantization, robot.mode) == (20, 20, 1, "naive")
    assert spec.fps == 50.0 and spec.inference.policy == FactorySpec("tests.core.toy:StampPolicy", {"chunk_size": 8})
    assert (spec.inference.fixed_delay_steps, spec.inference.delay_quantile, spec.inference.estimator) == (2, 0.95, None)

    from vlash.commands.control import control_config
    from vlash.commands.serve import server_config

    control = control_config(spec, robot)
    assert (control.robot_id, control.mode, control.fps, control.execution_horizon) == ("a", "naive", 50.0, 20)
    server = server_config(spec)
    assert (server.mode, server.fps, server.fixed_delay_steps, server.delay_quantile) == ("vlash", 50.0, 2, 0.95)


def test_factories_are_checked_by_import_and_signature():
    spec = parse_launch(good_launch())  # values only: the driver 'x.y:Z' is not imported yet
    check_factories(spec, robots=[])  # the policy imports and takes chunk_size
    with pytest.raises(LaunchError, match=r"robots\[0\]\.driver: factory 'x.y:Z': cannot import"):
        check_factories(spec)
    with pytest.raises(LaunchError, match=r"inference\.policy: tests.core.toy:StampPolicy takes no keyword 'speed'"):
        check_factories(parse_launch(good_launch(inference={"policy": {"factory": "tests.core.toy:StampPolicy",
                                                                       "speed": 3}})), robots=[])

    def needs_task(task: str, *, fps: float = 30.0) -> None: ...

    with pytest.raises(ValueError, match="missing a required argument: 'task'"):
        check_arguments(needs_task, {"fps": 10}, "needs_task")
    check_arguments(lambda **anything: None, {"colour": "red"}, "takes anything")  # **kwargs accepts any key


def test_launch_file_robot_keys_bind_robots_to_client_keys(tmp_path):
    from vlash.curve import save_keypair
    from vlash.launchfile import server_curve

    for name in ("server", "a", "b"):
        save_keypair(tmp_path, name)
    curve = {"server_secret": str(tmp_path / "server.key_secret"), "server_public": str(tmp_path / "server.key"),
             "client_secret": str(tmp_path / "a.key_secret")}
    two = [{"id": "a", "driver": {"factory": "x.y:Z"}}, {"id": "b", "driver": {"factory": "x.y:Z"}}]
    with pytest.raises(LaunchError, match="no key for robot b"):
        parse_launch(good_launch(robots=two, curve={**curve, "robot_keys": {"a": str(tmp_path / "a.key")}}))
    with pytest.raises(LaunchError, match="robot_keys.a: expected a public key file"):
        parse_launch(good_launch(curve={**curve, "robot_keys": {"a": 3}}))
    bound = {"a": str(tmp_path / "a.key"), "b": [str(tmp_path / "b.key")]}
    config = server_curve(parse_launch(good_launch(robots=two, curve={**curve, "robot_keys": bound})))
    a_key = (tmp_path / "a.key").read_text().split('"')[1].encode()
    assert config.robot_keys["a"] == (a_key,) and len(config.allowed_client_keys) == 2
    assert config.may_speak_for("a", a_key.decode()) and not config.may_speak_for("b", a_key.decode())


def test_factory_builds_by_import_path():
    policy = build({"factory": "tests.core.toy:StampPolicy", "chunk_size": 3})
    assert policy.chunk_size == 3
    with pytest.raises(ValueError, match="cannot import"):
        resolve("no_such_pkg.mod:thing")
    with pytest.raises(ValueError, match="has no"):
        resolve("tests.core.toy:Nope")
    with pytest.raises(ValueError, match="package.module:callable"):
        resolve("just_a_name")


def test_run_log_is_readable_after_sigkill(tmp_path):
    code = f"""
import time, numpy as np
from vlash.runlog import RunLog
log = RunLog({str(tmp_path)!r}, flush_every=10)
for i in range(1000):
    log.ticks.write({{"step": i, "state": np.zeros(3)}})
    if i == 95:
        print("ready", flush=True)
        time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    rows = read_jsonl(tmp_path / "ticks.jsonl")
    assert [r["step"] for r in rows] == list(range(90))  # everything up to the last flush


def test_run_log_close_flushes_everything(tmp_path):
    log = RunLog(tmp_path, flush_every=1000)
    for i in range(5):
        log.ticks.write({"step": i, "x": np.float32(np.nan)})
    log.close({"ticks": 5})
    assert [r["step"] for r in read_jsonl(tmp_path / "ticks.jsonl")] == list(range(5))
    assert json.loads((tmp_path / "summary.json").read_text()) == {"ticks": 5}
