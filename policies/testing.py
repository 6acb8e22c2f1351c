"""Tiny, randomly initialised LeRobot checkpoints for tests and benchmarks.

Nothing is downloaded: the ACT vision backbone is built without pretrained weights and the
normalisation statistics are synthetic. The checkpoint folder has exactly the layout
``lerobot-train`` writes (``config.json``, ``model.safetensors``, processor JSON + state), so
:func:`policies.lerobot_adapter.load_policy` and LeRobot's own tools both load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from policies.loading import write_feature_names
from vlash.contracts import PolicyFeatures, PolicyObservation

SO101_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def make_tiny_act_checkpoint(
    directory: str | Path,
    *,
    state_dim: int = 6,
    action_dim: int = 6,
    env_state_dim: int | None = 3,
    chunk_size: int = 10,
    cameras: dict[str, tuple[int, int]] | Sequence[str] = (),
    image_size: int = 64,
    dim_model: int = 32,
    seed: int = 0,
) -> Path:
    """Write a small random ACT checkpoint (with pre/post-processors) to ``directory``; return it.

    ``cameras`` is either a list of names (each ``image_size`` square) or name -> (height, width).
    ACT needs at least one camera or an environment state; ``env_state_dim=None`` drops the latter.
    """
    import torch
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

    if not isinstance(cameras, dict):
        cameras = {name: (image_size, image_size) for name in cameras}
    if not cameras and env_state_dim is None:
        raise ValueError("ACT needs at least one camera or an environment state (env_state_dim)")
    directory = Path(directory)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    inputs: dict[str, PolicyFeature] = {OBS_STATE: PolicyFeature(FeatureType.STATE, (state_dim,))}
    if env_state_dim is not None:
        inputs[OBS_ENV_STATE] = PolicyFeature(FeatureType.ENV, (env_state_dim,))
    for name, (h, w) in cameras.items():
        inputs[f"{OBS_IMAGES}.{name}"] = PolicyFeature(FeatureType.VISUAL, (3, h, w))
    outputs = {ACTION: PolicyFeature(FeatureType.ACTION, (action_dim,))}

    config = ACTConfig(
        input_features=inputs,
        output_features=outputs,
        chunk_size=chunk_size,
        n_action_steps=chunk_size,
        dim_model=dim_model,
        n_heads=2,
        dim_feedforward=2 * dim_model,
        n_encoder_layers=1,
        n_decoder_layers=1,
        n_vae_encoder_layers=1,
        latent_dim=8,
        pretrained_backbone_weights=None,
        device="cpu",
        push_to_hub=False,
        normalization_mapping={
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ENV": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        },
    )

    def vec_stats(dim: int) -> dict[str, np.ndarray]:
        mean = rng.normal(0.0, 0.3, dim).astype(np.float32)
        std = rng.uniform(0.2, 0.6, dim).astype(np.float32)
        return {"mean": mean, "std": std, "min": mean - 3 * std, "max": mean + 3 * std}

    stats: dict[str, dict[str, np.ndarray]] = {OBS_STATE: vec_stats(state_dim), ACTION: vec_stats(action_dim)}
    if env_state_dim is not None:
        stats[OBS_ENV_STATE] = vec_stats(env_state_dim)
    for name in cameras:
        stats[f"{OBS_IMAGES}.{name}"] = {
            "mean": np.full((3, 1, 1), 0.5, np.float32),
            "std": np.full((3, 1, 1), 0.25, np.float32),
            "min": np.zeros((3, 1, 1), np.float32),
            "max": np.ones((3, 1, 1), np.float32),
        }

    policy = ACTPolicy(config)
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    policy.save_pretrained(directory)
    preprocessor.save_pretrained(directory)
    postprocessor.save_pretrained(directory)
    state_names = SO101_JOINTS if state_dim == len(SO101_JOINTS) else [f"state_{i}" for i in range(state_dim)]
    action_names = (
        SO101_JOINTS if action_dim == len(SO101_JOINTS) else [f"action_{i}" for i in range(action_dim)]
    )
    write_feature_names(directory, state_names=state_names, action_names=action_names, cameras=dict(cameras))
    return directory


def tiny_observation(
    features: PolicyFeatures,
    *,
    seed: int = 0,
    task: str = "reach the target",
    extra_dims: dict[str, int] | None = None,
) -> PolicyObservation:
    """A random :class:`PolicyObservation` that fits ``features`` (extras default to 3 values)."""
    rng = np.random.default_rng(seed)
    state = rng.normal(0.0, 0.3, features.state_dim).astype(np.float32)
    images = {
        name: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for name, (h, w) in features.cameras.items()
    }
    dims = extra_dims or {}
    extras = {n: rng.normal(0.0, 0.3, dims.get(n, 3)).astype(np.float32) for n in features.extras}
    return PolicyObservation(
        step=0, state=state, measured_state=state.copy(), images=images, task=task, extras=extras
    )


def make_synthetic_dataset(
    root: str | Path,
    *,
    episodes: int = 3,
    length: int = 30,
    state_dim: int = 6,
    action_dim: int = 6,
    env_state_dim: int = 3,
    cameras: dict[str, tuple[int, int]] | None = None,
    fps: int = 30,
    task: str = "reach the target",
    seed: int = 0,
) -> Path:
    """Write a small LeRobot dataset of smooth random reaches (no simulator needed); return ``root``.

    Episode ``e`` has ``length + e`` frames, so episode boundaries differ; the action is the next
    state (absolute targets), as in a position-controlled arm.
    """
    from lerobot.datasets import LeRobotDataset
    from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

    from policies.lerobot_data import quiet_datasets_progress, video_backend
    from policies.record import dataset_features

    quiet_datasets_progress()
    rng = np.random.default_rng(seed)
    cameras = dict(cameras or {})
    state_names = SO101_JOINTS if state_dim == len(SO101_JOINTS) else [f"state_{i}" for i in range(state_dim)]
    action_names = (
        SO101_JOINTS if action_dim == len(SO101_JOINTS) else [f"action_{i}" for i in range(action_dim)]
    )
    features = dataset_features(state_names, action_names, env_state_dim, cameras)
    dataset = LeRobotDataset.create(
        repo_id=f"synthetic/{Path(root).name}",
        fps=fps,
        features=features,
        root=root,
        use_videos=False,
        video_backend=video_backend(),
    )
    for episode in range(episodes):
        n = length + episode
        target = rng.uniform(-1.0, 1.0, max(state_dim, action_dim)).astype(np.float32)
        alpha = np.linspace(0.0, 1.0, n + 1, dtype=np.float32)[:, None]
        path = alpha * target[None, :]
        for i in range(n):
            frame = {
                OBS_STATE: path[i, :state_dim],
                ACTION: path[i + 1, :action_dim],
                "task": task,
            }
            if env_state_dim:
                frame[OBS_ENV_STATE] = target[:env_state_dim].copy()
            for name, (h, w) in cameras.items():
                frame[f"{OBS_IMAGES}.{name}"] = np.full((h, w, 3), int(255 * alpha[i, 0]), np.uint8)
            dataset.add_frame(frame)
        dataset.save_episode()
    dataset.finalize()
    return Path(root)
