"""Scripted demonstrations from a sim task, written as a LeRobot (v3) dataset (``vlash record``).

The task's scripted expert runs synchronously at the control rate (predict a chunk, execute it,
replan), one seeded episode after another. Every control step becomes one dataset frame with
``observation.state`` (joint targets space), ``observation.environment_state`` (the task's
privileged state, so ACT can train without cameras), optional ``observation.images.<cam>`` and
the ``action`` executed at that step. The writer is LeRobot's own (``LeRobotDataset.create``), so
``LeRobotDataset(repo_id, root=out)`` and the ``lerobot-*`` tools open the result offline.
The command-line flags live in :mod:`vlash.commands.record`.

Multimodal, noisy demonstrations (as the paper's Kinetix data): ``action_noise`` adds N(0, σ) radians to
every executed action, drawn from a generator seeded by the episode's seed, and the recorded action is
the executed noisy one (clipped to the action space); ``strategy`` picks the expert's way of doing a task
that has several (``random`` draws one per episode). Which strategy each saved episode used is written
to :data:`EPISODES_SIDECAR` (JSON, read back with :func:`read_episodes`).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlash.contracts import PolicyObservation

log = logging.getLogger(__name__)

MAX_STEPS_CAP = 100_000  # a runaway episode is a bug in the task, not a long demonstration
EPISODES_SIDECAR = "meta/vlash_episodes.json"  # per-episode seed, strategy, success and length
NOISE_STREAM = 0x6E6F6973  # mixed into an episode's seed for its action noise (independent of the task's draws)


@dataclass
class RecordOptions:
    """What to record; mirrors the command-line flags of ``vlash record``."""

    task: str
    episodes: int
    out: Path
    cameras: tuple[str, ...] = ()
    image_size: int = 96
    seed: int = 0
    fps: float | None = None  # None: the task's own rate
    chunk_size: int | None = None  # None: the expert's default
    max_steps: int | None = None  # per episode; None: the task's own time limit
    only_success: bool = False
    video: bool = False
    repo_id: str | None = None
    progress: bool = True
    action_noise: float = 0.0  # σ (radians) of the N(0, σ) noise added to every executed (and recorded) action
    strategy: str | None = None  # the expert's strategy where it has several; None: its default


@dataclass
class RecordSummary:
    """What was written."""

    root: Path
    episodes: int
    frames: int
    successes: int
    discarded: int
    seconds: float
    episode_lengths: list[int] = field(default_factory=list)
    strategies: list[str | None] = field(default_factory=list)  # per saved episode


def dataset_features(
    state_names: Sequence[str],
    action_names: Sequence[str],
    env_state_dim: int,
    cameras: dict[str, tuple[int, int]],
    *,
    video: bool = False,
    env_state_names: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """The LeRobot feature spec for a recording (names let lerobot tools label the plots)."""
    from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

    features: dict[str, dict[str, Any]] = {
        OBS_STATE: {"dtype": "float32", "shape": (len(state_names),), "names": list(state_names)},
        ACTION: {"dtype": "float32", "shape": (len(action_names),), "names": list(action_names)},
    }
    if env_state_dim:
        features[OBS_ENV_STATE] = {
            "dtype": "float32",
            "shape": (env_state_dim,),
            "names": list(env_state_names)
            if len(env_state_names) == env_state_dim
            else [f"task_state_{i}" for i in range(env_state_dim)],
        }
    for name, (h, w) in cameras.items():
        features[f"{OBS_IMAGES}.{name}"] = {
            "dtype": "video" if video else "image",
            "shape": (h, w, 3),
            "names": ["height", "width", "channels"],
        }
    return features


def _policy_observation(obs: dict[str, Any], step: int, task: str) -> PolicyObservation:
    state = np.asarray(obs["state"], np.float32)
    extras = {k: np.asarray(obs[k], np.float32) for k in ("task_state", "velocity") if k in obs}
    return PolicyObservation(
        step=step,
        state=state,
        measured_state=state.copy(),
        images=dict(obs.get("images", {})),
        task=task,
        extras=extras,
    )


def _frame(obs: dict[str, Any], action: np.ndarray, task: str, cameras: Sequence[str]) -> dict[str, Any]:
    from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

    frame: dict[str, Any] = {
        OBS_STATE: np.asarray(obs["state"], np.float32),
        ACTION: np.asarray(action, np.float32),
        "task": task,
    }
    if "task_state" in obs and np.size(obs["task_state"]):
        frame[OBS_ENV_STATE] = np.asarray(obs["task_state"], np.float32)
    for cam in cameras:
        frame[f"{OBS_IMAGES}.{cam}"] = np.asarray(obs["images"][cam], np.uint8)
    return frame


def record(options: RecordOptions, make_task: Callable[..., Any], make_expert: Callable[..., Any]) -> RecordSummary:
    """Record ``options.episodes`` expert episodes to ``options.out`` and return a summary.

    ``make_task(name, **kwargs)`` builds the environment and ``make_expert(name, chunk_size=...)``
    its scripted expert (e.g. ``sim.make_task`` and ``sim.experts.make_expert``): the simulator
    plugs in here, policies/ does not import it.
    """
    from lerobot.datasets import LeRobotDataset
    from tqdm import tqdm

    from policies.lerobot_data import quiet_datasets_progress, video_backend

    quiet_datasets_progress()
    out = Path(options.out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} already exists and is not empty; choose a new --out")
    if options.episodes < 1:
        raise ValueError("--episodes must be >= 1")
    if not (math.isfinite(options.action_noise) and options.action_noise >= 0):
        raise ValueError(f"--action-noise must be a finite sigma >= 0, got {options.action_noise}")

    make_kwargs: dict[str, Any] = {"cameras": tuple(options.cameras), "image_size": options.image_size}
    if options.fps:
        make_kwargs["fps"] = options.fps
    if options.max_steps:
        make_kwargs["max_steps"] = options.max_steps
    try:
        env = make_task(options.task, **make_kwargs)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"cannot make sim task {options.task!r}: {exc}") from exc
    base = env.unwrapped
    fps = float(getattr(base, "fps", options.fps or 30))
    expert_kwargs: dict[str, Any] = {"fps": fps}
    if options.chunk_size:
        expert_kwargs["chunk_size"] = options.chunk_size
    try:
        expert = _make_expert(options, make_expert, expert_kwargs)
    except ValueError:
        env.close()
        raise
    robot = getattr(base, "features", None)
    state_names = tuple(getattr(robot, "joint_names", ())) or tuple(f"q{i}" for i in range(6))
    action_names = tuple(getattr(robot, "action_names", state_names))

    obs, _ = env.reset(seed=options.seed)
    env_state_dim = int(np.size(obs.get("task_state", ())))
    cameras = {cam: tuple(np.asarray(obs["images"][cam]).shape[:2]) for cam in options.cameras}
    features = dataset_features(
        state_names,
        action_names,
        env_state_dim,
        cameras,
        video=options.video,
        env_state_names=tuple(getattr(base, "task_state_names", ())),
    )
    repo_id = options.repo_id or f"vlash/{out.name}"
    dataset = LeRobotDataset.create(
        repo_id=repo_id,
        fps=int(round(fps)),
        features=features,
        root=out,
        robot_type="so101_sim",
        use_videos=options.video,
        video_backend=video_backend(),
    )
    summary = RecordSummary(root=out, episodes=0, frames=0, successes=0, discarded=0, seconds=0.0)
    saved: list[dict[str, Any]] = []
    start = time.perf_counter()
    bar = tqdm(total=options.episodes, desc=f"record {options.task}", unit="ep", disable=not options.progress)
    failed = True
    try:
        for episode in range(options.episodes):
            seed = options.seed + episode
            obs, info = env.reset(seed=seed)
            expert.reset()
            task_text = str(getattr(base, "task_description", options.task))
            noise = np.random.default_rng([seed, NOISE_STREAM]) if options.action_noise > 0 else None
            steps, success = _run_episode(env, expert, obs, task_text, dataset, options, cameras, noise)
            if options.only_success and not success:
                dataset.clear_episode_buffer()
                summary.discarded += 1
            else:
                dataset.save_episode()
                strategy = getattr(expert, "strategy_name", None)
                saved.append({"episode_index": summary.episodes, "seed": seed, "strategy": strategy,
                              "success": bool(success), "steps": steps})
                summary.episodes += 1
                summary.frames += steps
                summary.episode_lengths.append(steps)
                summary.strategies.append(strategy)
            summary.successes += int(success)
            bar.update(1)
            bar.set_postfix(frames=summary.frames, success=f"{summary.successes}/{episode + 1}")
        failed = False
    finally:
        bar.close()
        dataset.finalize()
        env.close()
        if failed:  # the folder was new: leave no half-written dataset behind (Ctrl-C keeps it)
            _discard_failed(out, sys.exc_info()[1])
    sidecar = {"task": options.task, "seed": options.seed, "action_noise": float(options.action_noise),
               "strategy": options.strategy, "strategies": list(getattr(expert, "strategies", ())),
               "episodes": saved}
    (out / EPISODES_SIDECAR).write_text(json.dumps(sidecar, indent=1) + "\n")
    summary.seconds = time.perf_counter() - start
    return summary


def _make_expert(options: RecordOptions, make_expert: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """The task's expert, with ``options.strategy`` when given (refused for an expert without strategies)."""
    expert = make_expert(options.task, **kwargs)
    if options.strategy is None:
        return expert
    strategies = tuple(getattr(expert, "strategies", ()))
    if not strategies:
        raise ValueError(f"--strategy: the {options.task!r} expert has a single way of doing its task (no strategies)")
    if options.strategy not in strategies:
        raise ValueError(f"--strategy must be one of {', '.join(strategies)} for {options.task!r}, got {options.strategy!r}")
    return make_expert(options.task, strategy=options.strategy, **kwargs)


def read_episodes(root: str | Path) -> dict[str, Any]:
    """The recording's sidecar (:data:`EPISODES_SIDECAR`): task, seed, action_noise, strategy option and,
    per saved episode (``episodes``, in dataset order), its ``episode_index``, ``seed``, ``strategy`` (None
    for an expert without strategies), ``success`` and ``steps``."""
    return json.loads((Path(root).expanduser() / EPISODES_SIDECAR).read_text())


def _discard_failed(out: Path, exc: BaseException | None) -> None:
    if isinstance(exc, Exception):
        shutil.rmtree(out, ignore_errors=True)
        log.error("recording failed; removed the partial dataset %s", out)


def _run_episode(env, expert, obs, task_text, dataset, options: RecordOptions, cameras,
                 noise: np.random.Generator | None = None) -> tuple[int, bool]:
    """Execute the expert chunk by chunk (sync), adding a frame per control step; with ``noise``, every
    executed (and recorded) action carries N(0, ``options.action_noise``), clipped to the action space."""
    limit = min(options.max_steps or MAX_STEPS_CAP, MAX_STEPS_CAP)
    space = getattr(env, "action_space", None)
    low, high = (getattr(space, "low", None), getattr(space, "high", None))
    step, success, done = 0, False, False
    while not done and step < limit:
        chunk = np.asarray(expert.predict_chunk(_policy_observation(obs, step, task_text)), np.float32)
        if chunk.ndim != 2 or len(chunk) == 0 or not np.all(np.isfinite(chunk)):
            raise RuntimeError(f"expert returned an invalid chunk (shape {chunk.shape}) at step {step}")
        for action in chunk:
            if noise is not None:
                action = action + noise.normal(0.0, options.action_noise, size=action.shape)
                if low is not None and high is not None:
                    action = np.clip(action, low, high)
                action = action.astype(np.float32)
            dataset.add_frame(_frame(obs, action, task_text, list(cameras)))
            obs, _, terminated, truncated, info = env.step(action)
            step += 1
            success = success or bool(info.get("success", False))
            done = bool(terminated or truncated)
            if done or step >= limit:
                break
    return step, success
