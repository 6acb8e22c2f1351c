"""Record from the sim, train ACT with the delay augmentation, load through the adapter, predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sim.experts", reason="the sim package (tasks + scripted experts) is needed")

from policies.lerobot_adapter import load_policy  # noqa: E402
from policies.record import RecordOptions, _policy_observation, record  # noqa: E402
from policies.train import TrainOptions, train  # noqa: E402
from sim import make_task  # noqa: E402
from sim.experts import make_expert  # noqa: E402
from vlash.cli import main as vlash_main  # noqa: E402


def test_record_train_load_predict(tmp_path: Path) -> None:
    from lerobot.datasets import LeRobotDataset

    import sim

    summary = record(RecordOptions(task="reach", episodes=3, out=tmp_path / "demos", progress=False), make_task, make_expert)
    assert summary.episodes == 3 and summary.frames == sum(summary.episode_lengths) > 0

    dataset = LeRobotDataset("vlash/demos", root=tmp_path / "demos")  # LeRobot opens it offline
    assert dataset.meta.total_episodes == 3 and len(dataset) == summary.frames
    assert {"observation.state", "action", "observation.environment_state"} <= set(dataset.meta.features)
    assert dataset.meta.features["action"]["names"][0] == "shoulder_pan"

    result = train(
        TrainOptions(
            dataset=str(tmp_path / "demos"),
            out=tmp_path / "run",
            steps=3,
            batch_size=4,
            max_delay_steps=4,
            chunk_size=10,
            save_every=0,
            progress=False,
        )
    )
    env = sim.make_task("reach")
    try:
        policy = load_policy(result.out, robot_features=env.unwrapped.features)
        obs, _ = env.reset(seed=123)
        chunk = policy.predict_chunk(_policy_observation(obs, 0, env.unwrapped.task_description))
    finally:
        env.close()
    assert chunk.shape == (10, 6) and chunk.dtype == np.float32 and np.isfinite(chunk).all()


def test_record_cli_with_cameras_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lerobot.datasets import LeRobotDataset

    out = tmp_path / "cams"
    args = ["record", "--task", "reach", "--episodes", "1", "--out", str(out), "--cameras", "front"]
    assert vlash_main([*args, "--image-size", "32", "--no-progress"]) == 0
    item = LeRobotDataset("vlash/cams", root=out)[0]
    assert tuple(item["observation.images.front"].shape) == (3, 32, 32)

    assert vlash_main([*args, "--no-progress"]) == 2  # the folder exists now
    assert "not empty" in capsys.readouterr().err
    bad = ["record", "--task", "juggle", "--episodes", "1", "--out", str(tmp_path / "x"), "--no-progress"]
    assert vlash_main(bad) == 2
    assert "juggle" in capsys.readouterr().err
