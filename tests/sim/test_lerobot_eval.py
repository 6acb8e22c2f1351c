"""vlash's tasks as a LeRobot env plugin: ``lerobot-eval`` runs reach with a tiny local ACT checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lerobot.envs.configs import EnvConfig
from lerobot.envs.factory import make_env_config
from lerobot.envs.utils import env_to_policy_features, preprocess_observation

import sim
from policies.testing import make_tiny_act_checkpoint
from sim.lerobot_env import TASK_CONFIGS, VlashEnv

LEROBOT_EVAL = Path(sys.executable).with_name("lerobot-eval")


def test_every_task_is_a_registered_env_type_with_its_own_rate_and_state_size():
    known = EnvConfig.get_known_choices()
    assert {f"vlash_{t}" for t in sim.TASKS} | {"vlash"} <= set(known)
    for task in sim.TASKS:
        cfg = make_env_config(f"vlash_{task}")
        env = sim.make_task(task)
        assert cfg.task == task and cfg.fps == env.unwrapped.fps
        assert cfg.features["environment_state"].shape == env.observation_space["task_state"].shape
        env.close()
    assert make_env_config("vlash", task="track").gym_id == "vlash/track-v0"
    with pytest.raises(ValueError, match="unknown task"):
        VlashEnv(task="nope")


def test_observations_map_to_the_policy_features_lerobot_expects():
    cfg = TASK_CONFIGS["reach"](cameras="front,wrist", image_size=16, episode_length=5)
    vec = cfg.create_envs(n_envs=1)["vlash_reach"][0]
    try:
        obs, _ = vec.reset(seed=0)
        assert set(obs) == {"agent_pos", "environment_state", "pixels"} and set(obs["pixels"]) == {"front", "wrist"}
        batch = preprocess_observation(obs)
        features = env_to_policy_features(cfg)
        inputs = {k: f for k, f in features.items() if k != "action"}
        assert set(batch) == set(inputs)  # observation.state, .environment_state, .images.front, .images.wrist
        for key, feature in inputs.items():
            assert tuple(batch[key].shape[1:]) == feature.shape, key
        raw = sim.make_task("reach", cameras=("front",), image_size=16)
        raw_obs, _ = raw.reset(seed=0)
        np.testing.assert_array_equal(obs["agent_pos"][0], raw_obs["state"])
        np.testing.assert_array_equal(obs["environment_state"][0], raw_obs["task_state"])
        np.testing.assert_array_equal(obs["pixels"]["front"][0], raw_obs["images"]["front"])
        raw.close()
        assert list(vec.call("_max_episode_steps")) == [5]
        for _ in range(5):
            obs, _, terminated, truncated, info = vec.step(obs["agent_pos"])
        assert truncated[0] and not terminated[0]
        assert "final_info" in info and list(info["final_info"]["is_success"]) == [False]
    finally:
        vec.close()


@pytest.mark.slow
def test_lerobot_eval_runs_one_episode_of_reach(tmp_path):
    ckpt = make_tiny_act_checkpoint(tmp_path / "ckpt", state_dim=6, env_state_dim=6, chunk_size=5)
    out = tmp_path / "eval"
    cmd = [str(LEROBOT_EVAL), "--env.discover_packages_path=sim.lerobot_env", "--env.type=vlash_reach",
           "--env.episode_length=20", "--env.image_size=32", f"--policy.path={ckpt}", "--policy.device=cpu",
           "--eval.n_episodes=1", "--eval.batch_size=1", f"--output_dir={out}"]
    env = {**os.environ, "MUJOCO_GL": "egl", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((out / "eval_info.json").read_text())
    assert info["overall"]["n_episodes"] == 1
    (task,) = info["per_task"]
    assert task["task_group"] == "vlash_reach" and len(task["metrics"]["successes"]) == 1
    (video,) = task["metrics"]["video_paths"]
    assert Path(video).stat().st_size > 0
