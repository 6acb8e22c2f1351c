"""Train or fine-tune a LeRobot policy with VLASH's temporal-delay augmentation (``vlash train``).

Each sample draws a delay δ in ``{0..max_delay_steps}``: its action targets start at ``t+δ``, its
state input is the state at ``t+δ`` (the action ``a_{t+δ-1}`` standing in for it by default), its
images stay at ``t`` (index logic: ``policies.offsets``). So the model learns to act from a
*future* state while looking at a *current* image, which is what ``vlash`` mode feeds it. Policies
with an observation history (Diffusion's ``n_obs_steps``) get their inputs stacked over
``t-n+1..t``, the recorded past frames followed by that (future) state.

The low-dimensional columns are held in memory; so are the camera images, decoded once, when they
fit in ``image_cache_gb`` (otherwise LeRobot decodes each step's frames).

Everything else is LeRobot's: the policy (``make_policy``), its processors, the optimizer and
scheduler presets, and the checkpoint layout (``<out>/checkpoints/<step>/pretrained_model`` +
``training_state``, ``last`` symlink), so results load with ``load_policy`` and LeRobot's tools.
The command-line flags live in :mod:`vlash.commands.train`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policies.offsets import (
    check_state_source,
    delayed_indices,
    gather_delayed,
    history_indices,
    sample_delays,
    stack_history,
)
from policies.train_options import TrainOptions

__all__ = ["TrainOptions", "TrainResult", "train"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where the final checkpoint is, and how fast training went."""

    out: Path
    checkpoint: Path  # the final pretrained_model folder
    start_step: int
    steps: int
    seconds: float
    final_loss: float

    @property
    def steps_per_s(self) -> float:
        return (self.steps - self.start_step) / self.seconds if self.seconds > 0 else 0.0


def train(options: TrainOptions) -> TrainResult:
    """Run training as described by ``options``; return the final checkpoint's location."""
    import torch
    from lerobot.common.train_utils import (
        get_step_checkpoint_dir,
        save_checkpoint,
        update_last_checkpoint,
    )
    from lerobot.configs.default import DatasetConfig
    from lerobot.configs.train import TrainPipelineConfig
    from lerobot.utils.constants import (
        ACTION,
        CHECKPOINTS_DIR,
        LAST_CHECKPOINT_LINK,
        OBS_IMAGES,
        OBS_STATE,
        PRETRAINED_MODEL_DIR,
    )
    from tqdm import tqdm

    from policies.lerobot_adapter import resolve_device
    from policies.lerobot_data import load_columns, open_dataset, quiet_datasets_progress, video_backend
    from policies.loading import observation_steps, write_feature_names

    quiet_datasets_progress()
    if options.steps < 1 or options.batch_size < 1:
        raise ValueError("--steps and --batch-size must be >= 1")
    if options.max_delay_steps < 0:
        raise ValueError("--max-delay-steps must be >= 0")
    dataset = open_dataset(options.dataset)
    columns = load_columns(dataset)
    if options.max_delay_steps > 0:
        check_state_source(columns.state.shape[1], columns.action.shape[1], options.state_source)

    out = Path(options.out).expanduser()
    checkpoints = out / CHECKPOINTS_DIR
    last = checkpoints / LAST_CHECKPOINT_LINK
    if options.resume and not last.exists():
        raise FileNotFoundError(f"--resume: {out} has no {CHECKPOINTS_DIR}/{LAST_CHECKPOINT_LINK} to resume from")
    if not options.resume and checkpoints.exists() and any(checkpoints.iterdir()):
        raise FileExistsError(f"{out} already holds checkpoints; pass --resume to continue, or a new --out")

    device = resolve_device(options.device)
    from policies.loading import read_feature_names
    from policies.policy_setup import build_policy, image_renames

    if options.resume and not options.camera_map:  # keep the run's camera renames
        saved = read_feature_names(last.resolve() / PRETRAINED_MODEL_DIR).get("vlash_train", {})
        options.camera_map = dict(saved.get("camera_map") or {})

    torch.manual_seed(options.seed)  # weight init; a resumed run restores the saved RNG states instead
    policy, preprocessor, postprocessor, cfg = build_policy(
        options, dataset, device, resume_from=last.resolve() / PRETRAINED_MODEL_DIR if options.resume else None
    )
    chunk, action_start = len(cfg.action_delta_indices), int(cfg.action_delta_indices[0])
    obs_steps = observation_steps(policy)  # 0: one frame, no time axis
    if 1 - action_start != max(obs_steps, 1):
        raise ValueError(
            f"policy type {cfg.type!r} predicts from offset {action_start} but stacks {obs_steps} frames"
        )
    to_policy = image_renames(options.camera_map)
    image_keys = {  # dataset key -> policy key, for the policy's cameras the dataset has
        k: to_policy.get(k, k) for k in dataset.meta.camera_keys if to_policy.get(k, k) in cfg.input_features
    }

    train_cfg = TrainPipelineConfig(
        dataset=DatasetConfig(repo_id=dataset.repo_id, root=str(dataset.root), video_backend=video_backend()),
        policy=cfg,
        output_dir=out,
        seed=options.seed,
        batch_size=options.batch_size,
        steps=options.steps,
        num_workers=options.num_workers,
        save_freq=options.save_every,
        optimizer=cfg.get_optimizer_preset(),
        scheduler=cfg.get_scheduler_preset(),
    )
    if options.lr is not None:
        train_cfg.optimizer.lr = options.lr
    start_step, optimizer, scheduler = _optimizer(train_cfg, policy, last.resolve() if options.resume else None)
    if start_step >= options.steps:
        raise ValueError(f"--resume: the checkpoint is at step {start_step}, --steps is {options.steps}")

    plan = list(_row_batches(options, len(columns), start_step))
    images = (
        _image_batches(dataset, list(image_keys), columns, plan, obs_steps, options)
        if image_keys
        else None
    )
    grad_clip = float(getattr(train_cfg.optimizer, "grad_clip_norm", 0.0) or 0.0)
    names = dataset.meta.features
    loss_value, t0 = float("nan"), time.perf_counter()
    bar = tqdm(
        total=options.steps, initial=start_step, desc="train", unit="step", disable=not options.progress
    )
    policy.train()
    step = start_step
    for step, (rows, delays) in enumerate(plan, start_step + 1):
        batch = _delayed_batch(
            columns, rows, delays, chunk, options.state_source, cfg.input_features, obs_steps, action_start
        )
        if images is not None:
            frame = next(images)
            batch.update({dst: frame[src] for src, dst in image_keys.items()})
        batch = preprocessor(batch)
        loss, _ = policy.forward(batch)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if scheduler is not None:
            scheduler.step()
        loss_value = float(loss.detach())
        if not np.isfinite(loss_value):
            raise FloatingPointError(f"loss became {loss_value} at step {step}")
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.4f}")
        if (options.save_every > 0 and step % options.save_every == 0) or step == options.steps:
            ckpt_dir = get_step_checkpoint_dir(out, options.steps, step)
            save_checkpoint(
                ckpt_dir, step, train_cfg, policy, optimizer, scheduler, preprocessor, postprocessor
            )
            write_feature_names(
                ckpt_dir / PRETRAINED_MODEL_DIR,
                state_names=names[OBS_STATE].get("names") or [],
                action_names=names[ACTION].get("names") or [],
                cameras={
                    k.removeprefix(f"{OBS_IMAGES}."): tuple(cfg.input_features[k].shape[1:]) for k in image_keys.values()
                },
                fps=float(dataset.meta.fps),
                extra={
                    "vlash_train": {
                        "max_delay_steps": options.max_delay_steps,
                        "state_source": options.state_source,
                        "observation_steps": obs_steps,
                        "camera_map": options.camera_map,
                        "dataset": str(options.dataset),
                        "step": step,
                    }
                },
            )
            update_last_checkpoint(ckpt_dir)
            policy.train()
    bar.close()
    seconds = time.perf_counter() - t0
    result = TrainResult(
        out=out,
        checkpoint=last.resolve() / PRETRAINED_MODEL_DIR,
        start_step=start_step,
        steps=step,
        seconds=seconds,
        final_loss=loss_value,
    )
    summary = {
        "steps": step,
        "start_step": start_step,
        "seconds": round(seconds, 3),
        "steps_per_s": round(result.steps_per_s, 3),
        "final_loss": loss_value,
        "batch_size": options.batch_size,
        "max_delay_steps": options.max_delay_steps,
        "policy": cfg.type,
        "device": str(device),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return result


def _optimizer(train_cfg: Any, policy: Any, resume_from: Path | None) -> tuple[int, Any, Any]:
    """``(start_step, optimizer, scheduler)``: LeRobot's preset, fused (:func:`fuse_adam`), resumed if asked.

    A run saved before the fused switch existed loads into an unfused optimizer, then fuses.
    """
    from lerobot.common.train_utils import load_training_state
    from lerobot.optim.factory import make_optimizer_and_scheduler

    optimizer, scheduler = make_optimizer_and_scheduler(train_cfg, policy)
    fuse_adam(optimizer)
    if resume_from is None:
        return 0, optimizer, scheduler
    try:
        start_step, optimizer, scheduler = load_training_state(resume_from, optimizer, scheduler)
    except TypeError:  # saved unfused: LeRobot matches the saved param-group value types exactly
        optimizer, scheduler = make_optimizer_and_scheduler(train_cfg, policy)
        start_step, optimizer, scheduler = load_training_state(resume_from, optimizer, scheduler)
    fuse_adam(optimizer)
    return start_step, optimizer, scheduler


def fuse_adam(optimizer: Any) -> bool:
    """Run torch's Adam/AdamW as one fused kernel instead of one loop per tensor; True if it did.

    LeRobot's presets build them with torch's defaults, which on a CPU means the per-tensor loop:
    for Diffusion's 148 tensors that cost about as much as a third of the forward and backward pass.
    """
    import torch

    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        return False
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if not params or any(p.device.type not in ("cpu", "cuda") or not p.is_floating_point() for p in params):
        return False
    for group in optimizer.param_groups:
        if group.get("differentiable") or group.get("capturable"):
            return False
    for group in optimizer.param_groups:
        group["foreach"], group["fused"] = False, True
    return True


def _row_batches(
    options: TrainOptions, n_rows: int, start_step: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Rows and delays of each step; seeded by (seed, step), so a resumed run draws the same ones."""
    for step in range(start_step + 1, options.steps + 1):
        rng = np.random.default_rng([options.seed, step])
        rows = rng.integers(0, n_rows, size=options.batch_size, dtype=np.int64)
        yield rows, sample_delays(rng, options.batch_size, options.max_delay_steps)


def _image_rows(columns: Any, rows: np.ndarray, obs_steps: int) -> np.ndarray:
    """The rows whose images a step reads: ``rows`` (at ``t``), or their ``(B, n)`` histories flattened."""
    if not obs_steps:
        return rows
    return history_indices(rows, columns.episode_start[rows], obs_steps).reshape(-1)


def _image_batches(
    dataset: Any, image_keys: list[str], columns: Any, plan: list, obs_steps: int, options: TrainOptions
) -> Iterator[dict[str, Any]]:
    """Each step's images (never shifted by δ), ``(B, C, H, W)`` or ``(B, n, C, H, W)`` with a history.

    From memory when every frame fits in ``options.image_cache_gb`` (decoded once), else decoded
    by LeRobot per step, optionally in ``num_workers`` processes.
    """
    import torch

    from policies.lerobot_data import FrameImages, ImageCache

    image_rows = [_image_rows(columns, rows, obs_steps) for rows, _ in plan]
    cache = ImageCache.load(dataset, image_keys, max_bytes=options.image_cache_gb * 2**30, num_workers=options.num_workers)
    if cache is not None:
        frames: Iterator[dict[str, Any]] = (cache.frames(r) for r in image_rows)
    else:
        frames = iter(
            torch.utils.data.DataLoader(
                FrameImages(dataset, image_keys),
                batch_sampler=[r.tolist() for r in image_rows],
                num_workers=options.num_workers,
                persistent_workers=False,
            )
        )
    for (rows, _), frame in zip(plan, frames, strict=True):
        if obs_steps:
            frame = {k: frame[k].reshape(len(rows), obs_steps, *frame[k].shape[1:]) for k in image_keys}
        yield frame


def _delayed_batch(
    columns: Any,
    rows: np.ndarray,
    delays: np.ndarray,
    chunk: int,
    state_source: str,
    input_features: dict[str, Any],
    obs_steps: int = 0,
    action_start: int = 0,
) -> dict[str, Any]:
    """The non-image part of a training batch for ``rows`` shifted by ``delays``.

    ``obs_steps`` > 0 stacks the state and environment state over ``t-n+1..t`` (``(B, n, ...)``),
    the last state frame being the delayed one; ``action_start`` is the policy's first action offset.
    """
    import torch
    from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_STATE

    idx = delayed_indices(
        rows,
        columns.episode_end[rows],
        delays,
        chunk,
        state_source,  # type: ignore[arg-type]
        action_start=action_start,
        episode_start=columns.episode_start[rows],
    )
    state, action, is_pad = gather_delayed(idx, columns.state, columns.action)
    env_rows: np.ndarray = rows
    if obs_steps:
        env_rows = history_indices(rows, columns.episode_start[rows], obs_steps)
        state = stack_history(env_rows, columns.state, state)
    batch: dict[str, Any] = {
        ACTION: torch.from_numpy(np.ascontiguousarray(action, np.float32)),
        "action_is_pad": torch.from_numpy(is_pad),
        "task": [columns.tasks[r] for r in rows],
    }
    if OBS_STATE in input_features:
        batch[OBS_STATE] = torch.from_numpy(np.ascontiguousarray(state, np.float32))
    if OBS_ENV_STATE in input_features:
        if columns.env_state is None:
            raise ValueError(f"the policy needs {OBS_ENV_STATE} but the dataset has none")
        batch[OBS_ENV_STATE] = torch.from_numpy(np.ascontiguousarray(columns.env_state[env_rows]))
    return batch
