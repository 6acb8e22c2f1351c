"""vlash's tasks as a LeRobot env plugin, so ``lerobot-eval`` runs them like any LeRobot environment.

Importing this package registers an ``EnvConfig`` per task, ``vlash_<task>`` (``vlash_reach``, ``vlash_track``,
...), and ``vlash`` with a ``task`` field. LeRobot finds plugins it is pointed at with
``--env.discover_packages_path``::

    lerobot-eval --env.discover_packages_path=sim.lerobot_env --env.type=vlash_reach \\
        --policy.path=outputs/train/reach/checkpoints/last/pretrained_model --policy.device=cpu \\
        --eval.n_episodes=10 --eval.batch_size=1

(LeRobot's automatic discovery imports only distributions named ``lerobot_env_*``; vlash's is ``vlash``.)

Observations follow LeRobot's env convention (what ``lerobot.envs.utils.preprocess_observation`` maps):
``agent_pos`` = the joint positions (``observation.state``), ``environment_state`` = the task's
``task_state`` (``observation.environment_state``), and with ``--env.cameras=front,wrist`` ``pixels`` =
{camera: (size, size, 3) uint8} (``observation.images.<camera>``): the keys ``vlash record`` writes, so a
policy trained on a vlash dataset evaluates unchanged. ``info["is_success"]`` is the task's success.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

import sim
from sim.cameras import validate_cameras


class LeRobotObservation(gym.Wrapper):
    """A vlash task with LeRobot's observation keys, ``info["is_success"]`` and ``_max_episode_steps``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        base = env.observation_space
        obs_spaces: dict[str, spaces.Space] = {"agent_pos": base["state"], "environment_state": base["task_state"]}
        if "images" in base.spaces:
            obs_spaces["pixels"] = base["images"]
        self.observation_space = spaces.Dict(obs_spaces)
        fps = float(env.unwrapped.fps)
        # video writers want an integer rate; the task's own rate otherwise
        self.metadata = {**env.metadata, "render_fps": int(fps) if fps.is_integer() else fps}
        self._max_episode_steps = int(env.unwrapped.max_steps)
        self.task = env.unwrapped.task_name

    @staticmethod
    def map_observation(obs: dict[str, Any]) -> dict[str, Any]:
        """A vlash observation under LeRobot's env keys (``velocity`` has no LeRobot key and is dropped)."""
        out = {"agent_pos": obs["state"], "environment_state": obs["task_state"]}
        if "images" in obs:
            out["pixels"] = obs["images"]
        return out

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self.map_observation(obs), {**info, "is_success": bool(info["success"])}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.map_observation(obs), reward, terminated, truncated, {**info, "is_success": bool(info["success"])}


def make_lerobot_env(task: str, **kwargs) -> LeRobotObservation:
    """One task under LeRobot's observation keys; kwargs as for :func:`sim.make_task`."""
    return LeRobotObservation(sim.make_task(task, **kwargs))


def _task_class(task: str) -> type:
    module, cls = sim._ENTRY_POINTS[task].split(":")
    return getattr(importlib.import_module(module), cls)


def _camera_names(cameras: str) -> tuple[str, ...]:
    return validate_cameras(tuple(c.strip() for c in cameras.split(",") if c.strip()))


@EnvConfig.register_subclass("vlash")
@dataclass
class VlashEnv(EnvConfig):
    """A vlash sim task for ``lerobot-eval``: ``--env.type=vlash --env.task=<task>`` (or ``vlash_<task>``).

    ``fps`` and ``episode_length`` default to the task's own control rate and time limit; ``cameras`` is
    a comma-separated list of ``front``/``wrist`` (empty: no images, the task state only).
    """

    task: str = "reach"
    fps: float | None = None
    episode_length: int | None = None
    cameras: str = ""
    image_size: int = 96
    render_mode: str = "rgb_array"  # lerobot-eval renders the front camera into its episode videos
    features: dict[str, PolicyFeature] = field(default_factory=dict)
    features_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sim.env_id(self.task)  # an unknown task is a ValueError naming the known ones
        cls = _task_class(self.task)
        if self.fps is None:  # the task's own default rate (a camera-less instance renders nothing)
            probe = cls()
            self.fps = probe.fps
            probe.close()
        cams = _camera_names(self.cameras)
        self.features = {
            ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(6,)),
            "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(6,)),
            "environment_state": PolicyFeature(type=FeatureType.ENV, shape=(len(cls.task_state_names),)),
        }
        self.features_map = {ACTION: ACTION, "agent_pos": OBS_STATE, "environment_state": OBS_ENV_STATE}
        for cam in cams:
            self.features[f"pixels/{cam}"] = PolicyFeature(type=FeatureType.VISUAL,
                                                           shape=(self.image_size, self.image_size, 3))
            self.features_map[f"pixels/{cam}"] = f"{OBS_IMAGES}.{cam}"

    @property
    def package_name(self) -> str:
        return "sim"

    @property
    def gym_id(self) -> str:
        return sim.env_id(self.task)

    @property
    def gym_kwargs(self) -> dict:
        kwargs: dict[str, Any] = {"cameras": _camera_names(self.cameras), "image_size": self.image_size,
                                  "fps": self.fps, "render_mode": self.render_mode or None}
        if self.episode_length is not None:
            kwargs["max_steps"] = self.episode_length
        return kwargs

    def create_envs(self, n_envs: int, use_async_envs: bool = False) -> dict[str, dict[int, gym.vector.VectorEnv]]:
        """``{type: {0: VectorEnv}}`` of ``n_envs`` copies with LeRobot's keys; worker processes (async,
        ``n_envs`` > 1) start with ``context="spawn"`` (fork hangs once this process rendered)."""
        fns = [functools.partial(make_lerobot_env, self.task, **self.gym_kwargs) for _ in range(n_envs)]
        mode = gym.vector.AutoresetMode.SAME_STEP  # lerobot-eval reads is_success from final_info
        if use_async_envs and n_envs > 1:
            vec = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
        else:
            vec = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
        return {self.type: {0: vec}}


def _register_task_configs() -> dict[str, type[VlashEnv]]:
    configs = {}
    for task in sim.TASKS:
        name = "Vlash" + "".join(part.title() for part in task.split("_")) + "Env"
        cls = type(name, (VlashEnv,), {
            "__module__": __name__, "__qualname__": name, "__annotations__": {"task": "str"}, "task": task,
            "__doc__": f"The vlash ``{task}`` task for ``lerobot-eval`` (``--env.type=vlash_{task}``).",
        })
        configs[task] = EnvConfig.register_subclass(f"vlash_{task}")(dataclass(cls))
        globals()[name] = configs[task]
    return configs


TASK_CONFIGS = _register_task_configs()

__all__ = ["TASK_CONFIGS", "LeRobotObservation", "VlashEnv", "make_lerobot_env"]
