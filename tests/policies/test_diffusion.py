"""LeRobot's Diffusion Policy through vlash: train (small preset, history, offsets), load, history, batches, runtime."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="Diffusion Policy needs diffusers (a vlash dependency)")

from policies.lerobot_adapter import load_policy  # noqa: E402
from policies.testing import tiny_observation  # noqa: E402
from policies.train import TrainOptions, train  # noqa: E402
from vlash.contracts import ObservationFrame, PolicyObservation, predict_chunks  # noqa: E402


def keyed(obs: PolicyObservation, key: int | None, **changes) -> PolicyObservation:
    return replace(obs, sample_key=key, **changes)


@pytest.fixture(scope="module")
def policy(tiny_diffusion_run: Path):
    return load_policy(tiny_diffusion_run, device="cpu")


@pytest.fixture(scope="module")
def obs(policy) -> PolicyObservation:
    return tiny_observation(policy.features, seed=1, extra_dims={"task_state": 6})


def test_the_small_preset_is_saved_and_loads(tiny_diffusion_run: Path, policy) -> None:
    model_dir = tiny_diffusion_run / "checkpoints" / "last" / "pretrained_model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["type"] == "diffusion"
    assert (config["n_obs_steps"], config["horizon"], config["n_action_steps"]) == (2, 16, 8)
    assert config["down_dims"] == [64, 128, 256] and config["pretrained_backbone_weights"] is None
    assert (config["noise_scheduler_type"], config["num_inference_steps"]) == ("DDIM", 10)
    norm = config["normalization_mapping"]
    assert norm["STATE"] == norm["ENV"] == norm["ACTION"] == "MIN_MAX"  # the environment state too
    meta = json.loads((model_dir / "vlash_features.json").read_text())["vlash_train"]
    assert meta["max_delay_steps"] == 2 and meta["observation_steps"] == 2
    assert policy.features.history_steps == 1 and policy.chunk_size == 8
    assert policy.features.extras == ("task_state",) and policy.features.cameras == {}


def test_a_sample_key_fixes_the_chunk(policy, obs) -> None:
    a = policy.predict_chunk(keyed(obs, 7))
    assert a.shape == (8, 6) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, policy.predict_chunk(keyed(obs, 7)))  # DDIM, eta 0: determined by the noise
    assert not np.allclose(a, policy.predict_chunk(keyed(obs, 8)), atol=1e-3)
    free = [policy.predict_chunk(keyed(obs, None)) for _ in range(2)]  # no key: the policy's own RNG
    assert not np.allclose(free[0], free[1], atol=1e-3)


def test_history_is_the_previous_frame(policy, obs) -> None:
    base = keyed(obs, 3)
    alone = policy.predict_chunk(base)
    previous = ObservationFrame(step=-1, state=obs.measured_state + 0.5, extras=dict(obs.extras))
    with_history = policy.predict_chunk(keyed(obs, 3, history=(previous,)))
    assert not np.allclose(alone, with_history, atol=1e-4)  # the previous state is an input
    # no history: the measured frame at `step` stands in (training clamps to the episode's first frame)
    same = ObservationFrame(step=-1, state=obs.measured_state.copy())
    np.testing.assert_allclose(policy.predict_chunk(keyed(obs, 3, history=(same,))), alone, atol=1e-6)
    # only the last history_steps frames count, and the request's (estimated) state is the last frame
    older = ObservationFrame(step=-2, state=obs.measured_state - 3.0)
    np.testing.assert_allclose(
        policy.predict_chunk(keyed(obs, 3, history=(older, previous))), with_history, atol=1e-6
    )
    estimated = keyed(obs, 3, state=obs.state + 0.5)
    assert not np.allclose(policy.predict_chunk(estimated), alone, atol=1e-4)
    # a frame's extras are its own; a frame without extras reuses the current ones
    moved = ObservationFrame(step=-1, state=previous.state, extras={"task_state": obs.extras["task_state"] + 1})
    assert not np.allclose(policy.predict_chunk(keyed(obs, 3, history=(moved,))), with_history, atol=1e-4)
    bare = ObservationFrame(step=-1, state=previous.state)
    np.testing.assert_allclose(policy.predict_chunk(keyed(obs, 3, history=(bare,))), with_history, atol=1e-6)


def test_a_batch_equals_the_requests_one_at_a_time(policy, obs) -> None:
    previous = ObservationFrame(step=-1, state=obs.measured_state - 0.2)
    requests = [
        keyed(obs, 11),
        keyed(obs, 12, history=(previous,)),
        keyed(obs, 11, state=obs.state + 0.3),
        keyed(obs, 11),  # same observation and key as the first
    ]
    batched = policy.predict_batch(requests)
    assert policy.last_inference_s is not None
    assert len(batched) == 4 and all(c.shape == (8, 6) for c in batched)
    for request, chunk in zip(requests, batched, strict=True):
        np.testing.assert_allclose(chunk, policy.predict_chunk(request), atol=1e-5)
    np.testing.assert_allclose(batched[0], batched[3], atol=1e-6)
    assert not np.allclose(batched[0], batched[1], atol=1e-3)
    assert predict_chunks(policy, requests[:2])[1].shape == (8, 6)  # the core's entry point uses it
    assert policy.predict_batch([]) == []


def test_act_batches_too(tiny_act_camera_checkpoint: Path) -> None:
    act = load_policy(tiny_act_camera_checkpoint, device="cpu")
    requests = [tiny_observation(act.features, seed=s) for s in range(3)]
    for request, chunk in zip(requests, act.predict_batch(requests), strict=True):
        np.testing.assert_allclose(chunk, act.predict_chunk(request), rtol=1e-4, atol=1e-5)


def test_one_observation_step_trains_and_runs(synthetic_dataset: Path, tmp_path: Path) -> None:
    """n_obs_steps=1 keeps a time axis of one in LeRobot's loss and queue."""
    result = train(
        TrainOptions(dataset=str(synthetic_dataset), out=tmp_path / "run", policy="diffusion", steps=1,
                     batch_size=4, max_delay_steps=1, overrides={"n_obs_steps": 1}, save_every=0, progress=False)
    )
    single = load_policy(result.out, device="cpu")
    assert single.features.history_steps == 0 and single.chunk_size == 8
    chunk = single.predict_chunk(tiny_observation(single.features))
    assert chunk.shape == (8, 6) and np.isfinite(chunk).all()


def test_camera_history_policy(tmp_path: Path) -> None:
    from policies.testing import make_synthetic_dataset

    ds = make_synthetic_dataset(tmp_path / "cam", episodes=2, length=6, cameras={"front": (64, 64)})
    opts = TrainOptions(dataset=str(ds), out=tmp_path / "run", policy="diffusion", steps=2, batch_size=2,
                        max_delay_steps=1, save_every=0, progress=False)
    cam = load_policy(train(opts).out, device="cpu")
    assert cam.features.cameras == {"front": (64, 64)} and cam.features.history_steps == 1
    obs = keyed(tiny_observation(cam.features, seed=2), 5)
    plain = ObservationFrame(step=-1, state=obs.measured_state.copy())
    alone = cam.predict_chunk(replace(obs, history=(plain,)))  # the frame reuses the current image
    np.testing.assert_allclose(alone, cam.predict_chunk(obs), atol=1e-6)
    dark = replace(plain, images={"front": np.zeros((64, 64, 3), np.uint8)})
    assert not np.allclose(cam.predict_chunk(replace(obs, history=(dark,))), alone, atol=1e-5)
    small = make_synthetic_dataset(tmp_path / "small", episodes=1, length=3, cameras={"front": (32, 32)})
    with pytest.raises(ValueError, match="--image-size 64"):  # a 1-cell spatial softmax ignores the image
        train(replace(opts, dataset=str(small), out=tmp_path / "small_run"))


def test_runs_in_virtual_time_one_by_one_and_batched(tiny_diffusion_run: Path) -> None:
    pytest.importorskip("sim.tasks", reason="the sim package is needed")
    import sim
    from vlash.virtual_time import RunConfig, run_episode, run_episodes_batched

    envs = [sim.make_task("reach") for _ in range(2)]
    try:
        policy = load_policy(tiny_diffusion_run, robot_features=envs[0].unwrapped.features, device="cpu")
        seen: list[int] = []
        predict = policy.predict_chunk

        def spy(observation: PolicyObservation) -> np.ndarray:
            seen.append(len(observation.history))
            return predict(observation)

        policy.predict_chunk = spy  # type: ignore[method-assign]
        config = RunConfig(mode="vlash", delay_steps=2, execution_horizon=4, estimator="target", max_steps=24)
        one_by_one = [run_episode(envs[0], policy, config, seed=s) for s in (0, 1)]
        policy.predict_chunk = predict  # type: ignore[method-assign]
        batched = run_episodes_batched(envs, policy, config, [0, 1])
    finally:
        for env in envs:
            env.close()
    assert seen[0] == 0 and max(seen) == 1  # the runner passes the previous frame after the first step
    for a, b in zip(one_by_one, batched, strict=True):
        assert a.steps == b.steps == 24 and len(a.chunks) == len(b.chunks) >= 5
        assert np.isfinite(a.actions).all()
        np.testing.assert_allclose(a.actions, b.actions, atol=1e-4)
    assert not np.allclose(one_by_one[0].actions, one_by_one[1].actions)  # seeds differ, so do chunks


def test_cli_chunk_size_sets_the_executed_steps_and_a_fitting_horizon(synthetic_dataset: Path, tmp_path: Path) -> None:
    from vlash.cli import main as vlash_main

    args = ["train", "--dataset", str(synthetic_dataset), "--policy", "diffusion", "--chunk-size", "4",
            "--steps", "1", "--batch-size", "2", "--save-every", "0", "--no-progress", "--out", str(tmp_path / "run")]
    assert vlash_main(args) == 0
    config = json.loads((tmp_path / "run/checkpoints/last/pretrained_model/config.json").read_text())
    assert (config["n_action_steps"], config["horizon"]) == (4, 8)  # 4 + 2 - 1 rounded up to 2**3
    assert load_policy(tmp_path / "run", device="cpu").chunk_size == 4
