"""Building the policy and processors ``vlash train`` trains: fresh, fine-tuned or resumed.

Mirrors what ``lerobot-train`` does (``make_policy`` with the dataset's metadata, processors with
the dataset's statistics, or the checkpoint's on resume) so a run is interchangeable with one
started by LeRobot's own script.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from policies.loading import (
    TOLERATES_MISSING_CAMERAS,
    MissingDependencyError,
    PolicyLoadError,
    processor_steps,
    resolve_checkpoint,
)

if TYPE_CHECKING:
    import torch

    from policies.train_options import TrainOptions

# A small ACT that trains in minutes on a laptop CPU (LeRobot's defaults are sized for GPUs).
ACT_SMALL = {
    "dim_model": 128,
    "n_heads": 4,
    "dim_feedforward": 512,
    "n_encoder_layers": 2,
    "n_decoder_layers": 1,
    "n_vae_encoder_layers": 2,
    "latent_dim": 16,
    "optimizer_lr": 1e-4,
    "optimizer_lr_backbone": 1e-4,
}
# A small Diffusion Policy for a CPU (4.6 M parameters state-only; LeRobot's default UNet is ~250 M):
# 2 observation frames, a 16-step window of which 8 are executed, 10 DDIM steps at inference
# (DDIM with eta 0 is deterministic given the initial noise, so a sample key fixes the chunk).
DIFFUSION_SMALL = {
    "n_obs_steps": 2,
    "horizon": 16,
    "n_action_steps": 8,
    "down_dims": (64, 128, 256),
    "noise_scheduler_type": "DDIM",
    "num_inference_steps": 10,
    "use_group_norm": True,  # no pretrained backbone, so GroupNorm (small batches) is allowed
    "crop_shape": None,  # small cameras are used whole
}


def build_policy(
    options: TrainOptions, dataset: Any, device: torch.device, *, resume_from: Path | None = None
) -> tuple[Any, Any, Any, Any]:
    """Return ``(policy, preprocessor, postprocessor, config)`` ready to train on ``dataset``."""
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import make_policy, make_pre_post_processors
    from lerobot.utils.feature_utils import dataset_to_policy_features

    renames = image_renames(options.camera_map)
    ds_features = {renames.get(k, k): f for k, f in dataset_to_policy_features(dataset.meta.features).items()}
    stats = {renames.get(k, k): v for k, v in dataset.meta.stats.items()}
    pretrained: Path | None = None
    if resume_from is not None:
        pretrained = resume_from
    elif options.policy not in PreTrainedConfig.get_known_choices():
        try:
            pretrained = resolve_checkpoint(options.policy)
        except PolicyLoadError as exc:
            known = ", ".join(sorted(PreTrainedConfig.get_known_choices()))
            raise ValueError(
                f"--policy {options.policy!r} is neither a LeRobot policy type ({known}) nor a checkpoint: {exc}"
            ) from exc

    if pretrained is not None:
        cfg = PreTrainedConfig.from_pretrained(pretrained)
    else:
        cfg = _fresh_config(options, ds_features, device)
    _apply_overrides(cfg, options)
    cfg.device = device.type
    cfg.push_to_hub = False
    cfg.pretrained_path = pretrained
    _check_trainable(cfg, ds_features)

    try:
        policy = make_policy(cfg, ds_meta=dataset.meta, rename_map=renames or None)
    except ImportError as exc:
        raise MissingDependencyError.for_policy(cfg.type, exc) from exc

    if pretrained is None:
        pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
        return policy, pre, post, cfg
    pre_over, post_over = _processor_overrides(cfg, pretrained, stats, device, resume=resume_from is not None)
    pre, post = make_pre_post_processors(
        cfg,
        pretrained_path=str(pretrained),
        preprocessor_overrides=pre_over,
        postprocessor_overrides=post_over,
    )
    return policy, pre, post, cfg


def image_renames(camera_map: dict[str, str] | None) -> dict[str, str]:
    """Dataset camera -> policy camera, as full LeRobot keys (``observation.images.<name>``)."""
    prefix = _image_prefix()
    return {prefix + src: prefix + dst for src, dst in (camera_map or {}).items()}


def _image_prefix() -> str:
    """``observation.images.``, from LeRobot (imported here: it loads torch)."""
    from lerobot.utils.constants import OBS_IMAGES

    return OBS_IMAGES + "."


def _fresh_config(options: TrainOptions, ds_features: dict[str, Any], device: torch.device) -> Any:
    from lerobot.configs.types import FeatureType, NormalizationMode
    from lerobot.policies.factory import make_policy_config

    kwargs: dict[str, Any] = {"device": device.type}
    if options.policy in ("act", "diffusion"):
        kwargs["pretrained_backbone_weights"] = None  # torchvision weights would need a download
    if options.preset == "small":
        kwargs.update({"act": ACT_SMALL, "diffusion": DIFFUSION_SMALL}.get(options.policy, {}))
    if options.policy == "diffusion":
        if options.chunk_size:
            kwargs["n_action_steps"] = options.chunk_size
            n_obs = int(kwargs.get("n_obs_steps", 2))
            stages = len(kwargs.get("down_dims", (512, 1024, 2048)))
            kwargs["horizon"] = _round_up(options.chunk_size + n_obs - 1, 2**stages)
    elif options.chunk_size:
        kwargs["chunk_size"] = options.chunk_size
        kwargs["n_action_steps"] = options.chunk_size
    elif options.policy == "act" and options.preset == "small":
        kwargs["chunk_size"] = kwargs["n_action_steps"] = 20
    try:
        cfg = make_policy_config(options.policy, **kwargs)
    except TypeError as exc:
        raise ValueError(f"policy {options.policy!r} does not take these settings: {exc}") from exc
    cameras = [k for k, f in ds_features.items() if f.type is FeatureType.VISUAL]
    renames = image_renames(options.camera_map)
    prefix = _image_prefix()
    wanted = (
        cameras
        if options.cameras is None
        else [renames.get(prefix + c, prefix + c) for c in options.cameras]
    )
    missing = [c for c in wanted if c not in cameras]
    if missing:
        have = [c.removeprefix(prefix) for c in cameras]
        raise ValueError(
            f"--cameras: the dataset has no {[m.removeprefix(prefix) for m in missing]} (has {have})"
        )
    cfg.input_features = {
        k: f
        for k, f in ds_features.items()
        if f.type is not FeatureType.ACTION and (f.type is not FeatureType.VISUAL or k in wanted)
    }
    cfg.output_features = {k: f for k, f in ds_features.items() if f.type is FeatureType.ACTION}
    if "ENV" not in cfg.normalization_mapping:  # ACT and Diffusion leave it unnormalised otherwise
        state_mode = cfg.normalization_mapping.get("STATE", NormalizationMode.MEAN_STD)
        cfg.normalization_mapping = {**cfg.normalization_mapping, "ENV": state_mode}
    return cfg


def _round_up(value: int, multiple: int) -> int:
    """Diffusion's UNet halves the window per down stage: its horizon is a multiple of 2**len(down_dims)."""
    return -(-value // multiple) * multiple


def _apply_overrides(cfg: Any, options: TrainOptions) -> None:
    for key, value in options.overrides.items():
        if not hasattr(cfg, key):
            raise ValueError(f"--set {key}=...: {type(cfg).__name__} has no field {key!r}")
        setattr(cfg, key, value)
    if options.lr is not None:
        for key in ("optimizer_lr", "optimizer_lr_backbone"):
            if hasattr(cfg, key):
                setattr(cfg, key, options.lr)


def _check_trainable(cfg: Any, ds_features: dict[str, Any]) -> None:
    """The delay augmentation handles policies that see the frame at ``t`` or a history ending at ``t``.

    One frame (``observation_delta_indices`` None or ``[0]``): action targets must start at ``t``.
    A history of ``n`` frames (``[1-n .. 0]``, Diffusion's ``n_obs_steps``): they start at ``t-n+1``.
    """
    observed = cfg.observation_delta_indices
    n_obs = 1 if observed is None else len(observed)
    if observed is not None and list(observed) != list(range(1 - n_obs, 1)):
        raise ValueError(
            f"policy type {cfg.type!r} conditions on observations at offsets {list(observed)[:5]}...; "
            "vlash train supports the current frame or a history ending at it ([-(n-1) .. 0])"
        )
    actions = list(cfg.action_delta_indices or [])
    if not actions or actions != list(range(1 - n_obs, 1 - n_obs + len(actions))):
        raise ValueError(
            f"policy type {cfg.type!r} predicts actions at offsets {actions[:5]}..., "
            f"not from its first observation frame (offset {1 - n_obs}) on"
        )
    missing = [k for k in cfg.input_features if k not in ds_features]
    prefix = _image_prefix()
    cams = [k for k in cfg.input_features if k.startswith(prefix)]
    if cfg.type in TOLERATES_MISSING_CAMERAS and any(k in ds_features for k in cams):
        missing = [k for k in missing if not k.startswith(prefix)]  # it masks absent camera slots
    if missing:
        raise ValueError(
            f"the policy needs {missing}, which the dataset lacks (has {sorted(ds_features)}); "
            "rename dataset cameras with --camera-map DATASET_CAM=POLICY_CAM"
        )
    validate = getattr(cfg, "validate_features", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise ValueError(
                f"{exc} (record with --cameras, or keep observation.environment_state in the dataset)"
            ) from exc
    _check_image_size(cfg)


def _check_image_size(cfg: Any) -> None:
    """Diffusion's ResNet encoder ends in a spatial softmax over a 1/32-size feature map: on images
    under 64 px that map is one cell wide, every image gives the same keypoints, and the camera
    is silently ignored."""
    if cfg.type != "diffusion" or not cfg.image_features:
        return
    seen = cfg.crop_shape or cfg.resize_shape or next(iter(cfg.image_features.values())).shape[1:]
    if min(seen) < 64:
        raise ValueError(
            f"Diffusion sees {tuple(seen)} images; its ResNet reduces them 32x, so the spatial softmax "
            "gets a single cell and ignores the camera. Record with --image-size 64 or more "
            "(or --set resize_shape=[64,64])"
        )


def _processor_overrides(
    cfg: Any, pretrained: Path, stats: dict[str, Any], device: torch.device, *, resume: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """As ``lerobot-train``: the dataset's statistics when fine-tuning, the checkpoint's on resume."""
    pre_steps = processor_steps(pretrained, "preprocessor")
    post_steps = processor_steps(pretrained, "postprocessor")
    pre: dict[str, Any] = {}
    post: dict[str, Any] = {}
    if "device_processor" in pre_steps:
        pre["device_processor"] = {"device": device.type}
    if "normalizer_processor" in pre_steps:
        pre["normalizer_processor"] = {
            "features": {**cfg.input_features, **cfg.output_features},
            "norm_map": cfg.normalization_mapping,
        }
        if not resume:
            pre["normalizer_processor"]["stats"] = stats
    if "unnormalizer_processor" in post_steps:
        post["unnormalizer_processor"] = {
            "features": cfg.output_features,
            "norm_map": cfg.normalization_mapping,
        }
        if not resume:
            post["unnormalizer_processor"]["stats"] = stats
    return pre, post
