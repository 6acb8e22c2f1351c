"""The LeRobot adapter on tiny local checkpoints: shapes, processors, errors, RTC pass-through."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from policies.lerobot_adapter import (
    CheckpointNotFoundError,
    FeatureMismatchError,
    LeRobotPolicy,
    MissingDependencyError,
    load_policy,
)
from policies.testing import SO101_JOINTS, tiny_observation
from vlash.contracts import Policy, PolicyObservation


@dataclass(frozen=True)
class Robot:
    """Stands in for robot_drivers.RobotFeatures (duck-typed by the adapter)."""

    joint_names: tuple[str, ...] = SO101_JOINTS
    action_names: tuple[str, ...] = SO101_JOINTS
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)


def test_predict_chunk_shape_dtype_and_protocol(tiny_act_checkpoint: Path) -> None:
    policy = load_policy(tiny_act_checkpoint, robot_features=Robot(), device="cpu")
    assert isinstance(policy, Policy)
    assert policy.chunk_size == 10 and not policy.supports_rtc
    assert policy.features.state_dim == 6 and policy.features.action_dim == 6
    assert policy.features.extras == ("task_state",) and policy.features.cameras == {}
    obs = tiny_observation(policy.features)
    chunk = policy.predict_chunk(obs)
    assert chunk.shape == (10, 6) and chunk.dtype == np.float32 and np.isfinite(chunk).all()
    assert policy.last_inference_s is not None and policy.last_inference_s > 0
    np.testing.assert_array_equal(chunk, policy.predict_chunk(obs))  # eval mode: deterministic
    policy.reset()


def test_warm_up_calls_are_not_counted_as_latency(tiny_act_checkpoint: Path) -> None:
    policy = load_policy(tiny_act_checkpoint, device="cpu", warmup=2)
    assert policy.last_inference_s is None
    policy.predict_chunk(tiny_observation(policy.features))
    assert policy.last_inference_s is not None


def test_chunk_is_unnormalised_by_the_saved_postprocessor(tiny_act_checkpoint: Path) -> None:
    policy = load_policy(tiny_act_checkpoint, device="cpu")
    obs = tiny_observation(policy.features, seed=3)
    chunk = policy.predict_chunk(obs)
    with torch.inference_mode():
        raw = policy.policy.predict_action_chunk(policy.preprocessor(policy._batch([obs])))[0].numpy()
    stats = next(s for s in policy.postprocessor.steps if hasattr(s, "_tensor_stats"))._tensor_stats["action"]
    expected = raw * stats["std"].numpy() + stats["mean"].numpy()
    np.testing.assert_allclose(chunk, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(chunk, raw)


def test_camera_checkpoint_and_camera_map(tiny_act_camera_checkpoint: Path) -> None:
    robot = Robot(cameras={"top": (32, 32)})
    policy = load_policy(tiny_act_camera_checkpoint, robot_features=robot, camera_map={"top": "front"})
    assert policy.features.cameras == {"top": (32, 32)}
    obs = tiny_observation(policy.features)
    assert set(obs.images) == {"top"}
    assert policy.predict_chunk(obs).shape == (8, 6)
    obs.images = {"side": obs.images["top"]}
    with pytest.raises(KeyError, match="camera 'top' missing"):
        policy.predict_chunk(obs)


def test_run_folder_resolves_to_the_last_checkpoint(tiny_act_checkpoint: Path, tmp_path: Path) -> None:
    target = tmp_path / "run" / "checkpoints" / "000010"
    target.mkdir(parents=True)
    (target / "pretrained_model").symlink_to(tiny_act_checkpoint, target_is_directory=True)
    (tmp_path / "run" / "checkpoints" / "last").symlink_to("000010")
    policy = load_policy(tmp_path / "run")
    assert policy.path == tmp_path / "run" / "checkpoints" / "last" / "pretrained_model"


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        load_policy(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):  # it is also a FileNotFoundError
        load_policy(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointNotFoundError, match="no config.json"):
        load_policy(tmp_path / "empty")


def test_hub_id_fails_clearly_offline() -> None:
    with pytest.raises(CheckpointNotFoundError, match="Hugging Face Hub"):
        load_policy("lerobot/definitely-not-a-real-policy-vlash")


def test_feature_mismatch_lists_names_on_both_sides(tiny_act_camera_checkpoint: Path) -> None:
    robot = Robot(
        joint_names=("a", "b", "c", "d", "e", "f", "g"),
        action_names=SO101_JOINTS[::-1],
        cameras={"wrist": (32, 32)},
    )
    with pytest.raises(FeatureMismatchError) as info:
        load_policy(tiny_act_camera_checkpoint, robot_features=robot)
    text = str(info.value)
    assert "state: checkpoint has 6 values" in text and "'shoulder_pan'" in text and "'g'" in text
    assert "action:" in text and "['gripper', 'wrist_roll'" in text  # reversed order is a mismatch
    assert "cameras: checkpoint needs ['front']" in text and "['wrist']" in text


def test_runtime_shape_errors(tiny_act_checkpoint: Path) -> None:
    policy = load_policy(tiny_act_checkpoint)
    obs = tiny_observation(policy.features)
    bad = PolicyObservation(step=0, state=np.zeros(5, np.float32), measured_state=np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="5 values"):
        policy.predict_chunk(bad)
    obs.extras = {}
    with pytest.raises(KeyError, match="task_state"):
        policy.predict_chunk(obs)


def test_missing_optional_dependency_names_the_extra(tmp_path: Path) -> None:
    pytest.importorskip("lerobot.policies.smolvla.configuration_smolvla")
    try:
        import transformers  # noqa: F401

        pytest.skip("transformers is installed, so smolvla would load")
    except ImportError:
        pass
    from lerobot.policies.factory import make_policy_config

    config = make_policy_config("smolvla", device="cpu", push_to_hub=False)
    config._save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["type"] == "smolvla"
    with pytest.raises(MissingDependencyError, match=r"lerobot\[smolvla\]"):
        load_policy(tmp_path)


class RecordingRTCPolicy(torch.nn.Module):
    """A stand-in flow policy that declares RTC and records what the adapter passes it."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config, self.calls = config, []

    def supports_rtc(self) -> bool:
        return True

    def reset(self) -> None:
        pass

    def predict_action_chunk(self, batch, inference_delay=None, prev_chunk_left_over=None):
        self.calls.append((inference_delay, prev_chunk_left_over, torch.is_inference_mode_enabled()))
        return torch.zeros(1, self.config.chunk_size, 6)


def test_rtc_prefix_is_normalised_and_passed_through(tiny_act_checkpoint: Path) -> None:
    loaded = load_policy(tiny_act_checkpoint)
    stub = RecordingRTCPolicy(loaded.config)
    policy = LeRobotPolicy(
        stub, loaded.preprocessor, loaded.postprocessor, path=loaded.path, device=torch.device("cpu")
    )
    assert policy.supports_rtc
    obs = tiny_observation(policy.features)
    policy.predict_chunk(obs)  # no prefix: RTC inert
    assert stub.calls[-1][:2] == (0, None)
    prefix = np.linspace(-1, 1, 4 * 6, dtype=np.float32).reshape(4, 6)
    obs.prefix, obs.delay_steps = prefix, 3
    chunk = policy.predict_chunk(obs)
    delay, passed, inference_mode = stub.calls[-1]
    assert delay == 3 and not inference_mode  # RTC guidance needs autograd
    stats = next(s for s in loaded.preprocessor.steps if hasattr(s, "_tensor_stats"))._tensor_stats["action"]
    expected = (prefix - stats["mean"].numpy()) / (stats["std"].numpy() + 1e-8)
    np.testing.assert_allclose(passed.numpy(), expected, rtol=1e-5, atol=1e-5)
    # zero model output unnormalises to the action mean
    np.testing.assert_allclose(chunk, np.broadcast_to(stats["mean"].numpy(), chunk.shape), rtol=1e-6)
    obs.prefix = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="rtc prefix"):
        policy.predict_chunk(obs)


def test_diffusion_gets_the_history_select_action_would_build(tmp_path: Path) -> None:
    """LeRobot #3445: Diffusion's predict_action_chunk alone crashes on empty observation queues."""
    pytest.importorskip("diffusers")
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    config = DiffusionConfig(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (6,)),
            "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 32, 32)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
        pretrained_backbone_weights=None,
        use_group_norm=True,
        crop_shape=None,
        down_dims=(16, 32),
        horizon=8,
        n_action_steps=4,
        num_inference_steps=2,
        device="cpu",
        push_to_hub=False,
    )
    vec = {"min": -np.ones(6, np.float32), "max": np.ones(6, np.float32)}
    vec |= {"mean": np.zeros(6, np.float32), "std": np.ones(6, np.float32)}
    img = {"mean": np.full((3, 1, 1), 0.5, np.float32), "std": np.full((3, 1, 1), 0.25, np.float32)}
    pre, post = make_pre_post_processors(
        config, dataset_stats={"observation.state": vec, "action": vec, "observation.images.front": img}
    )
    DiffusionPolicy(config).save_pretrained(tmp_path)
    pre.save_pretrained(tmp_path)
    post.save_pretrained(tmp_path)

    policy = load_policy(tmp_path)
    assert policy.chunk_size == 4
    obs = policy.dummy_observation()
    for _ in range(2):
        chunk = policy.predict_chunk(obs)
        assert chunk.shape == (4, 6) and np.isfinite(chunk).all()
    queue = policy.policy._queues["observation.state"]
    assert len(queue) == config.n_obs_steps
