"""Run any LeRobot checkpoint (ACT, Diffusion, SmolVLA, π0, π0.5, …) behind the :class:`Policy` interface.

Everything model-specific stays LeRobot's: the policy class comes from LeRobot's factory, inputs go
through the checkpoint's saved pre-processor (normalisation, tokenisation, device) and chunks
through its post-processor (unnormalisation). This module only maps the runtime's observation
(state vector, images by camera name, task text, extras) to LeRobot batch keys and back.

Two LeRobot pitfalls are handled here rather than left to the caller:

- ``predict_action_chunk`` skips the observation-history set-up ``select_action`` does
  (LeRobot #3445): for policies with an observation queue (Diffusion) the adapter stacks the
  camera keys and fills the queue with the request's frames (``observation.history``, then the
  request's own) before asking for a chunk.
- real-time chunking (``rtc`` mode, flow policies): the queued prefix arrives unnormalised, so it
  is normalised by the checkpoint's own pre-processor before LeRobot's RTC guidance sees it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_PREFIX, OBS_STATE

from policies.loading import (
    TOLERATES_MISSING_CAMERAS,
    CheckpointNotFoundError,
    FeatureMismatchError,
    MissingDependencyError,
    PolicyLoadError,
    check_robot_features,
    chunk_size_of,
    compile_chunk_fn,
    import_policy_class,
    keyed_noise,
    noise_shape,
    observation_steps,
    policy_supports_rtc,
    processor_steps,
    read_feature_names,
    resolve_checkpoint,
    resolve_device,
    rtc_config,
)
from vlash.contracts import ActionKind, ObservationFrame, PolicyFeatures, PolicyObservation

__all__ = [
    "CheckpointNotFoundError",
    "FeatureMismatchError",
    "LeRobotPolicy",
    "MissingDependencyError",
    "PolicyLoadError",
    "load_policy",
    "resolve_device",
]

log = logging.getLogger(__name__)

# runtime extras name <- LeRobot observation key (everything else maps "observation.<name>" <-> "<name>")
EXTRA_ALIASES = {OBS_ENV_STATE: "task_state"}


class LeRobotPolicy:
    """A loaded LeRobot policy plus its processors, answering ``predict_chunk`` and ``predict_batch``.

    Attributes besides the :class:`Policy` protocol: ``config`` (the LeRobot config), ``path``
    (the local checkpoint folder), ``device``, ``compiled``, ``last_inference_s`` (wall time of
    the last ``predict_chunk`` or ``predict_batch``, pre- and post-processing included; warm-up
    calls never set it). Calls keep no state between them: the history comes in the observation.
    """

    action_kind: ActionKind = "absolute"

    def __init__(
        self,
        policy: Any,
        preprocessor: Any,
        postprocessor: Any,
        *,
        path: Path,
        device: torch.device,
        camera_map: Mapping[str, str] | None = None,
        default_task: str = "",
        compiled: bool = False,
    ) -> None:
        self.policy = policy
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.config = policy.config
        self.path = path
        self.device = device
        self.compiled = compiled
        self.default_task = default_task
        self.last_inference_s: float | None = None
        camera_from = {ckpt: rt for rt, ckpt in (camera_map or {}).items()}  # checkpoint -> runtime name
        inputs = dict(self.config.input_features)
        self._state_dim = int(inputs[OBS_STATE].shape[0]) if OBS_STATE in inputs else 0
        self._action_dim = int(self.config.output_features[ACTION].shape[0])
        self._image_keys = [k for k in inputs if k.startswith(OBS_IMAGES + ".")]
        self._image_shapes = {k: tuple(inputs[k].shape) for k in self._image_keys}  # (C, H, W)
        ckpt_cameras = {k: k.removeprefix(OBS_IMAGES + ".") for k in self._image_keys}
        self._camera_of = {k: camera_from.get(name, name) for k, name in ckpt_cameras.items()}  # key -> runtime
        self._extra_keys = {
            k: EXTRA_ALIASES.get(k, k.removeprefix(OBS_PREFIX))
            for k in inputs
            if k != OBS_STATE and k not in self._image_keys
        }
        self._extra_shapes = {k: tuple(inputs[k].shape) for k in self._extra_keys}
        self._obs_steps = observation_steps(policy)  # frames on a time axis; 0: one frame, no axis
        uses_task = any("token" in type(s).__name__.lower() for s in getattr(preprocessor, "steps", ()))
        self.features = PolicyFeatures(
            state_dim=self._state_dim,
            action_dim=self._action_dim,
            cameras={self._camera_of[k]: (s[1], s[2]) for k, s in self._image_shapes.items()},
            uses_task=uses_task,
            extras=tuple(self._extra_keys.values()),
            history_steps=max(self._obs_steps - 1, 0),
        )
        self.chunk_size = chunk_size_of(self.config)
        self.supports_rtc = policy_supports_rtc(policy)
        self._noise_shape = noise_shape(policy)
        self._warned_shapes: set[str] = set()
        self._tolerates_missing_cameras = self.config.type in TOLERATES_MISSING_CAMERAS

    # ---------------------------------------------------------------- Policy protocol
    def reset(self) -> None:
        """Clear the policy's and processors' per-episode caches."""
        self.policy.reset()
        for proc in (self.preprocessor, self.postprocessor):
            reset = getattr(proc, "reset", None)
            if callable(reset):
                reset()

    def predict_chunk(self, observation: PolicyObservation) -> np.ndarray:
        """Return the unnormalised ``(chunk_size, action_dim)`` float32 chunk for ``observation``.

        In ``rtc`` mode (``observation.prefix`` set and the policy supports RTC) row 0 of the
        result is for the same step as row 0 of the prefix; its first ``delay_steps`` rows are
        the ones LeRobot's guidance pins to the prefix. ``observation.sample_key`` fixes the
        initial noise of a sampling policy (Diffusion; with DDIM the chunk is then determined).
        """
        start = time.perf_counter()
        chunk = self._predict([observation])[0]
        self.last_inference_s = time.perf_counter() - start
        return chunk

    def predict_batch(self, observations: Sequence[PolicyObservation]) -> list[np.ndarray]:
        """Chunks for several observations from one pre-processor, model and post-processor call.

        Each equals what :meth:`predict_chunk` gives for that observation (to float tolerance;
        the same ``sample_key`` gives the same initial noise). RTC requests run one at a time.
        """
        observations = list(observations)
        if not observations:
            return []
        if self.supports_rtc and any(o.prefix is not None and len(o.prefix) > 0 for o in observations):
            return [self.predict_chunk(o) for o in observations]
        start = time.perf_counter()
        chunks = self._predict(observations)
        self.last_inference_s = time.perf_counter() - start
        return chunks

    # ---------------------------------------------------------------- extras
    def warmup(self, iterations: int = 1) -> float:
        """Run ``iterations`` predictions on a dummy observation (compilation, CUDA set-up).

        Returns the time spent; it is never reported as inference latency. Per-episode state
        is reset afterwards.
        """
        start = time.perf_counter()
        obs = self.dummy_observation()
        for _ in range(max(0, iterations)):
            self._predict([obs])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.reset()
        self.last_inference_s = None
        return time.perf_counter() - start

    def dummy_observation(self) -> PolicyObservation:
        """A neutral observation with exactly the shapes this checkpoint expects."""
        state = np.zeros(self._state_dim, np.float32)
        images = {name: np.full((h, w, 3), 128, np.uint8) for name, (h, w) in self.features.cameras.items()}
        extras = {
            name: np.zeros(self._extra_shapes[key], np.float32) for key, name in self._extra_keys.items()
        }
        return PolicyObservation(
            step=0,
            state=state,
            measured_state=state.copy(),
            images=images,
            task=self.default_task,
            extras=extras,
        )

    # ---------------------------------------------------------------- internals
    def _frames(self, observation: PolicyObservation) -> list[ObservationFrame]:
        """The frames the policy conditions on, oldest first; the last is the request's own.

        A history policy gets its ``history_steps`` latest measured frames (images and extras
        missing from a frame are the current ones), the oldest repeated when fewer are given, and
        with none the measured frame at ``step`` (so ``[s_t, ŝ_{t+Δ}]``: the training rule,
        whose indices before an episode's start clamp to its first frame). The last frame's state
        is ``observation.state``, the estimated one in ``vlash`` mode.
        """
        current = ObservationFrame(observation.step, observation.state, observation.images, observation.extras)
        past_steps = self._obs_steps - 1
        if past_steps <= 0:
            return [current]
        past = list(observation.history)[-past_steps:] or [
            ObservationFrame(observation.step, observation.measured_state)
        ]
        past = [past[0]] * (past_steps - len(past)) + past
        filled = [
            ObservationFrame(f.step, f.state, {**observation.images, **f.images}, {**observation.extras, **f.extras})
            for f in past
        ]
        return [*filled, current]

    def _batch(self, observations: Sequence[PolicyObservation]) -> dict[str, Any]:
        """Map runtime observations to an (unprocessed) LeRobot batch: ``(B, ...)``, or ``(B, n, ...)``
        for a history policy."""
        frames = [self._frames(o) for o in observations]
        stack = (lambda rows: np.stack(rows)) if self._obs_steps else (lambda rows: rows[0])
        batch: dict[str, Any] = {}
        if self._state_dim:
            state = np.stack([stack([self._state(f.state) for f in fs]) for fs in frames])
            batch[OBS_STATE] = torch.from_numpy(state)
        for key in self._image_keys:
            name = self._camera_of[key]
            present = [name in fs[-1].images for fs in frames]
            if not any(present) and self._tolerates_missing_cameras:
                continue
            images = np.stack([stack([self._image(f.images, name, key) for f in fs]) for fs in frames])
            tensor = torch.from_numpy(images).movedim(-1, -3)  # (..., H, W, 3) -> (..., 3, H, W)
            batch[key] = tensor.float() / 255.0 if images.dtype == np.uint8 else tensor.float()
        for key, name in self._extra_keys.items():
            values = np.stack([stack([self._extra(f.extras, name, key) for f in fs]) for fs in frames])
            batch[key] = torch.from_numpy(values)
        batch["task"] = [o.task or self.default_task for o in observations]
        batch["robot_type"] = ""
        return batch

    def _state(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float32).reshape(-1)
        if state.shape[0] != self._state_dim:
            raise ValueError(
                f"observation.state has {state.shape[0]} values, the checkpoint expects {self._state_dim}"
            )
        return state

    def _image(self, images: Mapping[str, np.ndarray], name: str, key: str) -> np.ndarray:
        if name not in images:
            raise KeyError(
                f"camera '{name}' missing from the observation (has: {sorted(images)}); "
                f"the checkpoint needs {sorted(self.features.cameras)}"
            )
        image = np.asarray(images[name])
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"camera '{name}': expected an (H, W, 3) image, got shape {image.shape}")
        self._warn_image_shape(name, image.shape[:2], self._image_shapes[key][1:])
        return image

    def _extra(self, extras: Mapping[str, np.ndarray], name: str, key: str) -> np.ndarray:
        if name not in extras:
            raise KeyError(f"extra '{name}' (for {key}) missing from the observation (has: {sorted(extras)})")
        return np.asarray(extras[name], dtype=np.float32).reshape(self._extra_shapes[key])

    def _warn_image_shape(self, name: str, got: tuple[int, ...], want: tuple[int, ...]) -> None:
        if tuple(got) != tuple(want) and name not in self._warned_shapes:
            self._warned_shapes.add(name)
            log.warning("camera '%s' gives %s images; the checkpoint was trained on %s", name, got, want)

    def _noise(self, observations: Sequence[PolicyObservation]) -> torch.Tensor | None:
        """The initial noise for these requests (:func:`~policies.loading.keyed_noise`), or None."""
        if self._noise_shape is None or all(o.sample_key is None for o in observations):
            return None
        noise = keyed_noise(self._noise_shape, [o.sample_key for o in observations])
        return noise.to(self.device, next(self.policy.parameters()).dtype)

    def _predict(self, observations: Sequence[PolicyObservation]) -> list[np.ndarray]:
        batch = self._batch(observations)
        first = observations[0]
        use_rtc = (
            len(observations) == 1 and self.supports_rtc and first.prefix is not None and len(first.prefix) > 0
        )
        if use_rtc:
            prefix = np.asarray(first.prefix, dtype=np.float32)
            if prefix.ndim != 2 or prefix.shape[1] != self._action_dim:
                raise ValueError(f"rtc prefix must be (P, {self._action_dim}), got {prefix.shape}")
            batch[ACTION] = torch.from_numpy(prefix.copy()).unsqueeze(0)
        # RTC guidance differentiates through the denoiser, which inference_mode forbids.
        grad_ctx = torch.no_grad() if use_rtc else torch.inference_mode()
        with grad_ctx:
            processed = self.preprocessor(batch)
            prefix_norm = processed.pop(ACTION, None)  # an output, never an input (LeRobot #3445)
            kwargs: dict[str, Any] = {}
            if use_rtc:
                prefix_norm = prefix_norm[0]
                horizon = int(getattr(getattr(self.config, "rtc_config", None), "execution_horizon", 0) or 0)
                if horizon:
                    prefix_norm = prefix_norm[:horizon]
                kwargs = {
                    "inference_delay": int(first.delay_steps),
                    "prev_chunk_left_over": prefix_norm,
                }
            elif self.supports_rtc:
                kwargs = {"inference_delay": 0, "prev_chunk_left_over": None}
            noise = self._noise(observations)
            if noise is not None:
                kwargs["noise"] = noise
            if self._obs_steps:
                self._fill_observation_queue(processed)
            actions = self.policy.predict_action_chunk(processed, **kwargs)
            actions = self.postprocessor(actions)
        chunks = actions.detach().to("cpu", torch.float32).numpy()
        chunks = chunks.reshape(1, *chunks.shape) if chunks.ndim == 2 else chunks
        if chunks.shape != (len(observations), self.chunk_size, self._action_dim):
            raise RuntimeError(
                f"policy returned chunks of shape {chunks.shape}, expected "
                f"({len(observations)}, {self.chunk_size}, {self._action_dim})"
            )
        return [np.ascontiguousarray(c, dtype=np.float32) for c in chunks]

    def _fill_observation_queue(self, batch: dict[str, Any]) -> None:
        """Do what ``select_action`` does before ``predict_action_chunk`` (LeRobot #3445).

        The queues get this request's ``n_obs_steps`` frames (``(B, n, ...)`` inputs split on the
        time axis), replacing whatever an earlier request left there.
        """
        if self._image_keys:
            batch[OBS_IMAGES] = torch.stack([batch[k] for k in self._image_keys], dim=-4)
        queues = self.policy._queues
        for key, queue in list(queues.items()):
            if key != ACTION and key in batch:
                queues[key] = deque(batch[key].unbind(1), maxlen=queue.maxlen)


def load_policy(
    path_or_hub_id: str | Path,
    *,
    robot_features: Any | None = None,
    device: str | torch.device = "auto",
    compile: bool = False,
    warmup: int | None = None,
    camera_map: Mapping[str, str] | None = None,
    task: str = "",
    rtc: bool | Mapping[str, Any] | None = None,
    revision: str | None = None,
) -> LeRobotPolicy:
    """Load a LeRobot checkpoint as a :class:`LeRobotPolicy`.

    ``path_or_hub_id``: a ``pretrained_model`` folder, a ``vlash train`` / ``lerobot-train`` run
    folder (its last checkpoint is used), or a Hub id such as ``lerobot/smolvla_base``.
    ``robot_features`` (a ``RobotFeatures``-like object with ``joint_names``, ``action_names``,
    ``cameras``) is checked against the checkpoint; mismatches raise :class:`FeatureMismatchError`
    listing both sides. ``camera_map`` renames robot cameras to the checkpoint's (robot -> checkpoint).
    ``compile`` wraps ``predict_action_chunk`` in ``torch.compile``; ``warmup`` calls (default 2
    when compiling, 1 on CUDA, else 0) run before this returns and are never counted as latency.
    ``rtc``: for RTC-capable policies, ``None``/``True`` enables LeRobot's RTC processor (a mapping
    is passed to ``RTCConfig``), ``False`` leaves it off; inert unless an observation carries a prefix.
    """
    folder = resolve_checkpoint(path_or_hub_id, revision=revision)
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import make_pre_post_processors

    dev = resolve_device(device)
    try:
        config = PreTrainedConfig.from_pretrained(folder)
    except (ValueError, FileNotFoundError) as exc:
        raise PolicyLoadError(f"cannot read the policy config in {folder}: {exc}") from exc
    config.device = str(dev)
    names = read_feature_names(folder)
    if robot_features is not None:
        check_robot_features(config, names, robot_features, camera_map=camera_map, source=str(path_or_hub_id))

    policy_cls = import_policy_class(config.type)
    native_compile = compile and hasattr(config, "compile_model")  # π0, π0.5, SmolVLA compile inside
    if native_compile:
        config.compile_model = True
    rtc_cfg = rtc_config(rtc) if hasattr(config, "rtc_config") else None
    if rtc_cfg is not None:
        config.rtc_config = rtc_cfg
    try:
        policy = policy_cls.from_pretrained(folder, config=config)
    except ImportError as exc:
        raise MissingDependencyError.for_policy(config.type, exc) from exc
    if rtc_cfg is not None and hasattr(policy, "init_rtc_processor"):
        policy.init_rtc_processor()
    policy.to(dev)
    policy.eval()

    overrides = (
        {"device_processor": {"device": str(dev)}} if "device_processor" in processor_steps(folder) else {}
    )
    try:
        preprocessor, postprocessor = make_pre_post_processors(
            config, pretrained_path=str(folder), preprocessor_overrides=overrides
        )
    except ImportError as exc:
        raise MissingDependencyError.for_policy(config.type, exc) from exc
    except FileNotFoundError as exc:
        raise PolicyLoadError(
            f"{folder} has no saved pre/post-processors (policy_preprocessor.json); "
            "re-save the checkpoint with LeRobot >= 0.4 or vlash train"
        ) from exc

    compiled = native_compile or (compile and compile_chunk_fn(policy))
    lerobot_policy = LeRobotPolicy(
        policy,
        preprocessor,
        postprocessor,
        path=folder,
        device=dev,
        camera_map=camera_map,
        default_task=task,
        compiled=compiled,
    )
    n_warm = warmup if warmup is not None else (2 if compiled else 1 if dev.type == "cuda" else 0)
    if n_warm:
        spent = lerobot_policy.warmup(n_warm)
        log.info("warm-up: %d calls in %.2f s (not counted as latency)", n_warm, spent)
    return lerobot_policy
