"""Small measurements of the sim components: estimator accuracy, render speed, expert success.

``python -m sim.bench`` prints all three with their settings.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sim.arm import DEFAULT_SERVO, ServoParams
from sim.model_estimator import ModelEstimator
from vlash.contracts import PolicyObservation

# A deliberately wrong servo model (20 % softer, 30 % more damping): how the estimator degrades when the
# model is not the plant, as it never exactly is on a real arm.
MISMATCHED_SERVO = ServoParams(kp=DEFAULT_SERVO.kp * 0.8, damping=DEFAULT_SERVO.damping * 1.3)


def record_sync_rollout(task: str, seed: int, fps: float = 30.0, chunk_size: int = 50) -> dict[str, np.ndarray]:
    """Run a task's expert synchronously (execute each chunk whole, replan) and record, per step, the
    state, velocity and executed action: ``states`` (T+1, 6), ``velocities`` (T+1, 6), ``actions`` (T, 6)."""
    from sim import make_expert, make_task

    env = make_task(task, fps=fps)
    expert = make_expert(task, chunk_size=chunk_size, fps=fps)
    obs, _ = env.reset(seed=seed)
    states, velocities, actions = [obs["state"]], [obs["velocity"]], []
    done = False
    while not done:
        observation = PolicyObservation(step=len(actions), state=obs["state"], measured_state=obs["state"],
                                        extras={"task_state": obs["task_state"], "velocity": obs["velocity"]})
        for action in expert.predict_chunk(observation):
            obs, _, terminated, truncated, _ = env.step(action)
            states.append(obs["state"])
            velocities.append(obs["velocity"])
            actions.append(action)
            done = terminated or truncated
            if done:
                break
    env.close()
    return {"states": np.asarray(states), "velocities": np.asarray(velocities), "actions": np.asarray(actions)}


def bench_estimators(
    task: str = "track", delay_steps: int = 4, episodes: int = 2, seed: int = 0, fps: float = 30.0
) -> dict[str, float]:
    """RMS error (radians, over all joints and steps) of future-state estimates ``ŝ_{k+Δ}`` against the
    recorded ``s_{k+Δ}``, for the ``none`` (current state), ``target`` (last queued target) and ``model``
    estimators, from expert rollouts of ``task``. In the simulator the ``model`` estimator runs the
    plant's own arm model, so it is exact up to contacts; ``model_mismatched`` uses
    :data:`MISMATCHED_SERVO` to show what a misidentified servo costs. Also returns ``model_over_target``."""
    if delay_steps < 1:
        raise ValueError("delay_steps must be >= 1")
    model = ModelEstimator(fps=fps)
    mismatched = ModelEstimator(fps=fps, servo=MISMATCHED_SERVO)
    errors: dict[str, list[np.ndarray]] = {"none": [], "target": [], "model": [], "model_mismatched": []}
    for episode in range(episodes):
        roll = record_sync_rollout(task, seed + episode, fps)
        states, velocities, actions = roll["states"], roll["velocities"], roll["actions"]
        for k in range(len(actions) - delay_steps + 1):
            truth = states[k + delay_steps]
            queued = actions[k:k + delay_steps]
            errors["none"].append(states[k] - truth)
            errors["target"].append(queued[-1] - truth)
            extras = {"velocity": velocities[k]}
            errors["model"].append(model.estimate(states[k], queued, extras) - truth)
            errors["model_mismatched"].append(mismatched.estimate(states[k], queued, extras) - truth)
    out = {name: float(np.sqrt(np.mean(np.square(err)))) for name, err in errors.items()}
    out["model_over_target"] = out["model"] / out["target"]
    out["samples"] = float(len(errors["model"]))
    return out


def bench_render(image_size: int = 128, frames: int = 200, task: str = "reach", visual: str = "simple") -> dict[str, float]:
    """Frames per second of each camera rendered alone at ``image_size`` (fast settings)."""
    import mujoco

    from sim import make_task
    from sim.cameras import CAMERA_NAMES, CameraRenderer

    env = make_task(task).unwrapped
    env.reset(seed=0)
    out = {}
    for name in CAMERA_NAMES:
        renderer = CameraRenderer(env.model, (name,), image_size, visual)
        renderer.render(env.data)  # warm-up
        start = time.perf_counter()
        for i in range(frames):
            env.data.qpos[0] = 0.3 * np.sin(i / 10)  # move the arm so no frame is a copy of the last
            mujoco.mj_kinematics(env.model, env.data)
            mujoco.mj_camlight(env.model, env.data)
            renderer.render(env.data)
        out[name] = frames / (time.perf_counter() - start)
        renderer.close()
    env.close()
    return out


def expert_success(task: str, seeds: range | list[int], chunk_size: int = 50, mode: str = "sync",
                   delay_steps: int = 0) -> float:
    """Success rate of the task's expert over ``seeds`` through the virtual-time runner."""
    from sim import make_expert, make_task
    from vlash.virtual_time import RunConfig, run_episode

    env = make_task(task)
    expert = make_expert(task, chunk_size=chunk_size)
    config = RunConfig(mode=mode, delay_steps=delay_steps)
    wins = [run_episode(env, expert, config, seed=s).success for s in seeds]
    env.close()
    return float(np.mean(wins))


def main() -> None:
    from sim import TASKS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args()
    report = {
        "render_fps": bench_render(args.image_size),
        "estimators_track_delay4": bench_estimators("track", 4),
        "estimators_whack_delay4": bench_estimators("whack", 4),
        "expert_sync_success": {t: expert_success(t, range(args.seeds)) for t in TASKS},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
