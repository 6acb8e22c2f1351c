"""Launch-file values are checked once, before any process starts: one line naming the key, exit 2.

What only a running part can tell (a sim task's name, a camera) fails ``vlash launch`` with that
process's own message and a non-zero exit, never a zero-tick summary and exit 0.
"""

import json
import re
import subprocess

import pytest
import yaml

from tests.faults.procs import ROOT, robot
from vlash.cli import main
from vlash.launchfile import check_factories, load_launch


def launch_file(folder, edit=None, driver=None, policy=None):
    data = {
        "name": "check",
        "fps": 30,
        "mode": "vlash",
        "inference": {"policy": policy or {"factory": "tests.core.toy:StampPolicy", "chunk_size": 20}},
        "robots": [robot("arm", driver)],
    }
    if edit is not None:
        edit(data)
    path = folder / "launch.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def robot0(**values):
    return lambda data: data["robots"][0].update(values)


def inference(**values):
    return lambda data: data["inference"].update(values)


def driver(**values):
    return lambda data: data["robots"][0]["driver"].update(values)


# case -> (edit of a good launch file, what its one error line says)
BAD = {
    "horizon_over_chunk": (robot0(execution_horizon=60), r"robots\[0\]\.execution_horizon: 60 > chunk_size 20"),
    "unknown_estimator": (inference(estimator="crystal_ball"),
                          r"inference\.estimator: unknown future-state estimator 'crystal_ball'; known: .*target"),
    "quantization_0": (robot0(quantization=0), r"robots\[0\]\.quantization: expected an integer >= 1, got 0"),
    "fps_true": (lambda d: d.update(fps=True), r": fps: expected a number > 0 .*got True"),
    "negative_fixed_delay": (inference(fixed_delay_steps=-3),
                             r"inference\.fixed_delay_steps: expected an integer >= 0, got -3"),
    "missing_driver_module": (driver(factory="no_such_package.arm:Driver"),
                              r"robots\[0\]\.driver: factory 'no_such_package.arm:Driver': cannot import"),
    "unknown_driver_keyword": (driver(colour="red"),
                               r"robots\[0\]\.driver: tests.runtime.toy_driver:ToyDriver takes no keyword 'colour'"),
    "empty_robot_id": (robot0(id=""), r"robots\[0\]\.id: expected a non-empty name .*got ''"),
    # and a few more of the same kind
    "chunk_size_true": (robot0(chunk_size=True), r"robots\[0\]\.chunk_size: expected an integer >= 1, got True"),
    "robot_id_path": (robot0(id="../elsewhere"), r"robots\[0\]\.id: expected a non-empty name"),
    "estimator_path_missing": (inference(estimator="no_such_package.est:Make"),
                               r"inference\.estimator: factory 'no_such_package.est:Make': cannot import"),
    "unknown_policy_keyword": (lambda d: d["inference"]["policy"].update(temperature=2),
                               r"inference\.policy: tests.core.toy:StampPolicy takes no keyword 'temperature'"),
    "quantile_0": (inference(delay_quantile=0), r"inference\.delay_quantile: expected a quantile in \(0, 1\], got 0"),
    "bad_latency": (inference(latency="gamma:3"), r"inference\.latency: bad latency spec 'gamma:3'"),
    "batching_yes": (inference(batching="yes"), r"inference\.batching: expected true or false, got 'yes'"),
    "per_item_without_latency": (inference(latency_per_item_ms=5),
                                 r"inference\.latency_per_item_ms: given without a latency"),
    "gather_negative": (inference(batch_gather_ms=-1), r"inference\.batch_gather_ms: expected milliseconds in 0\.\.100"),
    "estimator_options_alone": (inference(estimator_options={"fps": 30}),
                                r"inference\.estimator_options: given without an estimator"),
    "unknown_estimator_option": (inference(estimator="model", estimator_options={"gain": 2}),
                                 r"inference\.estimator: model takes no keyword 'gain'"),
    "unknown_mode": (robot0(mode="turbo"), r"robots\[0\]\.mode: unknown mode 'turbo'"),
}


def no_process(*args, **kwargs):
    raise AssertionError(f"a process was started: {args[0] if args else kwargs}")


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if not line.startswith("(set VLASH_DEBUG")]


@pytest.mark.parametrize(("edit", "error"), BAD.values(), ids=BAD.keys())
def test_bad_value_fails_before_any_process_starts(tmp_path, monkeypatch, capsys, edit, error):
    path = launch_file(tmp_path, edit)
    out = tmp_path / "run"
    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert main(["launch", str(path), "--duration", "1", "--out", str(out)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"vlash launch: error: {path}: "), lines
    assert re.search(error, lines[0]), lines[0]
    assert not out.exists()  # nothing was started: not even the run folder exists


@pytest.mark.parametrize(("command", "edit", "error"), [
    ("serve", robot0(execution_horizon=60), r"robots\[0\]\.execution_horizon: 60 > chunk_size 20"),
    ("control", robot0(execution_horizon=60), r"robots\[0\]\.execution_horizon: 60 > chunk_size 20"),
    ("serve", inference(estimator="crystal_ball"), r"inference\.estimator: unknown future-state estimator"),
    ("serve", lambda d: d["inference"]["policy"].update(temperature=2), r"takes no keyword 'temperature'"),
    ("control", driver(colour="red"), r"robots\[0\]\.driver: .*takes no keyword 'colour'"),
])
def test_serve_and_control_refuse_the_same_file(tmp_path, monkeypatch, capsys, command, edit, error):
    path = launch_file(tmp_path, edit)
    args = ["--out", str(tmp_path / "run")] if command == "control" else []
    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert main([command, str(path), *args]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"vlash {command}: error: {path}: "), lines
    assert re.search(error, lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


SIM_DRIVER = {"factory": "sim.driver:SimDriver", "task": "reach", "cameras": ["front"], "image_size": 64}


@pytest.mark.parametrize(("driver_spec", "policy", "said"), [
    ({**SIM_DRIVER, "task": "reech"}, None, r"robot arm: control process exited with code 2: .*unknown task 'reech'"),
    ({**SIM_DRIVER, "cameras": ["top"]}, None, r"robot arm: control process exited with code 2: .*camera.*'top'"),
    (None, {"factory": "tests.config.parts:BrokenPolicy", "chunk_size": 20},
     r"inference process exited with code 2: .*BrokenPolicy\(chunk_size=20\) fails on purpose"),
], ids=["sim_task", "sim_camera", "policy_build"])
def test_a_failing_process_fails_the_launch_with_its_own_message(tmp_path, capsys, driver_spec, policy, said):
    path = launch_file(tmp_path, driver=driver_spec, policy=policy)
    out = tmp_path / "run"
    assert main(["launch", str(path), "--duration", "2", "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert re.search(said, captured.err), captured.err
    assert "task_successes=" not in captured.out  # no summary line as if it had run
    summary = json.loads((out / "summary.json").read_text())  # the run folder is still written
    assert summary["robots"]["arm"]["ticks"] == 0


@pytest.mark.parametrize("path", sorted((ROOT / "launch").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_launch_files_pass_every_check(path):
    spec = load_launch(path)
    check_factories(spec)  # policy, estimator and drivers import and take the file's keywords
    for robot_spec in spec.robots:
        horizon = robot_spec.execution_horizon
        assert horizon == "auto" or 1 <= horizon <= robot_spec.chunk_size
