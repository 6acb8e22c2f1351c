"""Multimodal, noisy recording: seeded action noise, per-episode expert strategies kept beside the dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sim.experts", reason="the sim package (tasks + scripted experts) is needed")

from policies.record import NOISE_STREAM, RecordOptions, read_episodes, record  # noqa: E402
from sim import make_task  # noqa: E402
from sim.experts import make_expert  # noqa: E402
from sim.experts.detour import layout_side  # noqa: E402
from vlash.cli import main as vlash_main  # noqa: E402

EPISODES = 4
SIGMA = 0.05


def recorded(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(actions (N, 6), episode index (N,)) of a recording, opened with LeRobot."""
    from lerobot.datasets import LeRobotDataset

    data = LeRobotDataset(f"vlash/{root.name}", root=root).hf_dataset.with_format("numpy")
    return np.asarray(data["action"], np.float32), np.asarray(data["episode_index"])


def detour(out: Path, **kwargs) -> None:
    options = RecordOptions(task="detour", episodes=EPISODES, out=out, seed=10, chunk_size=8, progress=False, **kwargs)
    summary = record(options, make_task, make_expert)
    assert summary.episodes == EPISODES


def test_noise_is_seeded_and_the_recorded_action_is_the_noisy_one(tmp_path: Path) -> None:
    detour(tmp_path / "clean")
    detour(tmp_path / "noisy", action_noise=SIGMA)
    detour(tmp_path / "again", action_noise=SIGMA)
    clean, clean_ep = recorded(tmp_path / "clean")
    noisy, noisy_ep = recorded(tmp_path / "noisy")
    again, _ = recorded(tmp_path / "again")
    np.testing.assert_array_equal(noisy, again)  # reproducible
    env = make_task("detour")
    low, high = env.action_space.low, env.action_space.high
    env.close()
    for episode in range(EPISODES):  # the first action of an episode: the expert's own plus that episode's draw
        first_clean, first_noisy = clean[clean_ep == episode][0], noisy[noisy_ep == episode][0]
        draw = np.random.default_rng([10 + episode, NOISE_STREAM]).normal(0.0, SIGMA, size=6)
        np.testing.assert_allclose(first_noisy, np.clip(first_clean + draw, low, high), atol=1e-6)
    assert np.all(noisy >= low) and np.all(noisy <= high)  # recorded as executed: within the joint limits
    meta = read_episodes(tmp_path / "noisy")
    assert meta["action_noise"] == SIGMA and meta["task"] == "detour"
    assert read_episodes(tmp_path / "clean")["action_noise"] == 0.0


def test_each_episode_strategy_is_stored_and_matches_the_expert(tmp_path: Path) -> None:
    detour(tmp_path / "mixed")
    meta = read_episodes(tmp_path / "mixed")
    assert meta["strategy"] is None and meta["strategies"] == ["random", "left", "right"]
    assert [e["episode_index"] for e in meta["episodes"]] == list(range(EPISODES))
    env = make_task("detour")
    for episode in meta["episodes"]:
        task_state = env.reset(seed=episode["seed"])[0]["task_state"]
        assert episode["strategy"] == ("left" if layout_side(task_state) > 0 else "right")
        assert episode["success"] and episode["steps"] > 0
    env.close()
    _, index = recorded(tmp_path / "mixed")
    assert [int(np.sum(index == e["episode_index"])) for e in meta["episodes"]] == [e["steps"] for e in meta["episodes"]]

    detour(tmp_path / "left", strategy="left")
    assert {e["strategy"] for e in read_episodes(tmp_path / "left")["episodes"]} == {"left"}


def test_cli_flags_and_their_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["record", "--task", "detour", "--episodes", "2", "--out", str(out), "--no-progress", "--chunk-size", "8"]
    assert vlash_main([*args, "--action-noise", "0.02", "--strategy", "right"]) == 0
    meta = read_episodes(out)
    assert meta["strategy"] == "right" and meta["action_noise"] == 0.02
    assert [e["strategy"] for e in meta["episodes"]] == ["right", "right"]
    capsys.readouterr()

    reach = ["record", "--task", "reach", "--episodes", "1", "--out", str(tmp_path / "r"), "--no-progress"]
    assert vlash_main([*reach, "--strategy", "left"]) == 2
    err = capsys.readouterr().err
    assert "no strategies" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
    assert vlash_main([*args[:6], str(tmp_path / "o"), "--no-progress", "--strategy", "over"]) == 2
    assert "random, left, right" in capsys.readouterr().err
    assert vlash_main([*args[:6], str(tmp_path / "n"), "--no-progress", "--action-noise", "-1"]) == 2
    assert "--action-noise" in capsys.readouterr().err

    assert vlash_main([*reach, "--no-progress"]) == 0  # an expert without strategies: none recorded
    assert [e["strategy"] for e in read_episodes(tmp_path / "r")["episodes"]] == [None]
