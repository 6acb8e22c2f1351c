"""Finding a LeRobot checkpoint, reading what it expects, and checking it against a robot.

Errors name what to do. Kept apart from the adapter so these checks run before any weights load.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FEATURES_FILE = "vlash_features.json"  # names/layout the checkpoint was trained with (written by train)
LEROBOT_VERSION = "0.6.1"
# policy type -> LeRobot pip extra holding its optional dependencies
POLICY_EXTRAS = {
    "diffusion": "diffusion",
    "smolvla": "smolvla",
    "pi0": "pi",
    "pi05": "pi",
    "pi0_fast": "pi",
    "groot": "groot",
    "xvla": "xvla",
    "wall_x": "wall_x",
}
# VLAs that fill a missing camera slot with an empty, masked image (at least one camera is needed)
TOLERATES_MISSING_CAMERAS = frozenset({"smolvla", "pi0", "pi05", "pi0_fast", "groot", "xvla"})
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
LOCAL_ROOTS = frozenset({"data", "runs", "outputs", "checkpoints"})  # "data/reach50" is a folder, never a Hub user


class PolicyLoadError(RuntimeError):
    """A checkpoint could not be loaded; the message says why and what to do."""


class CheckpointNotFoundError(PolicyLoadError, FileNotFoundError):
    """No checkpoint at the given folder or Hub id."""


class FeatureMismatchError(PolicyLoadError, ValueError):
    """The checkpoint's inputs/outputs do not fit the robot (both sides are listed)."""


class MissingDependencyError(PolicyLoadError, ImportError):
    """The policy type needs an optional dependency (a LeRobot pip extra) that is not installed."""

    @classmethod
    def for_policy(cls, policy_type: str, exc: BaseException) -> MissingDependencyError:
        """Build the error for ``policy_type`` from the ``ImportError`` LeRobot raised."""
        text = str(exc)
        found = re.search(r"lerobot\[([\w-]+)\]", text)
        extra = found.group(1) if found else POLICY_EXTRAS.get(policy_type)
        missing = getattr(exc, "name", None) or (re.findall(r"'([\w.-]+)' is required", text) or ["?"])[0]
        install = (
            f"pip install 'lerobot[{extra}]=={LEROBOT_VERSION}'"
            if extra
            else "install the package named above"
        )
        return cls(
            f"policy type '{policy_type}' needs the optional dependency '{missing}', which is not "
            f"installed. Install it with: {install}  (LeRobot said: {text})"
        )


def looks_local(ref: str | Path) -> bool:
    """Whether ``ref`` can only mean a local path, never a Hub id ``user/name``: a :class:`~pathlib.Path`, a name
    starting with ``.``, ``/`` or ``~``, holding a backslash, not shaped ``user/name``, or whose first component
    is a folder here or one of :data:`LOCAL_ROOTS` (``data/reach50``, ``runs/act``)."""
    text = str(ref)
    if isinstance(ref, Path) or text.startswith((".", "/", "~")) or "\\" in text or not _HUB_ID.match(text):
        return True
    first = text.split("/", 1)[0]
    return first in LOCAL_ROOTS or Path(first).is_dir()


def hub_failure(exc: BaseException) -> str | None:
    """Why a Hub lookup failed, in a few words, when ``exc`` or one of its causes is a Hub or network error;
    None for any other error (a real bug must still surface as itself)."""
    seen: BaseException | None = exc
    for _ in range(16):  # causes chain; a cycle is cut short
        if seen is None:
            return None
        name, module = type(seen).__name__, type(seen).__module__.split(".")[0]
        if name == "GatedRepoError":
            return "it is gated or private on the Hugging Face Hub (log in and accept its terms)"
        if name in ("RepositoryNotFoundError", "RevisionNotFoundError"):
            return "it is not on the Hugging Face Hub"
        if name == "OfflineModeIsEnabled":
            return "it is not in the local Hub cache, and HF_HUB_OFFLINE is set"
        if module in ("httpx", "httpcore", "requests", "urllib3", "huggingface_hub") or isinstance(
            seen, ConnectionError | TimeoutError | socket.gaierror
        ):
            detail = str(seen).splitlines()[0][:120] if str(seen) else ""
            return f"the Hugging Face Hub could not be reached ({name}{': ' + detail if detail else ''})"
        seen = seen.__cause__ or seen.__context__
    return None


def missing(kind: str, ref: str | Path, reason: str | None = None, hint: str = "") -> str:
    """The one-line message for a ``kind`` folder (dataset, checkpoint) that is not there: a local-looking path,
    or (with ``reason``) a name that was also tried as a Hub id."""
    if reason is None:
        return f"{kind} folder {ref} does not exist{hint}"
    return f"no {kind} folder {ref} (it does not exist here, and {reason}){hint}"


def resolve_checkpoint(path_or_hub_id: str | Path, *, revision: str | None = None) -> Path:
    """Return the local folder holding ``config.json``: the folder itself, its ``pretrained_model``,
    or a run folder's ``checkpoints/last/pretrained_model``; a Hub id is downloaded first."""
    ref = str(path_or_hub_id)
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointNotFoundError(
                f"{path} is a file; expected a checkpoint folder holding config.json"
            )
        from lerobot.utils.constants import CHECKPOINTS_DIR, LAST_CHECKPOINT_LINK, PRETRAINED_MODEL_DIR

        run_last = path / CHECKPOINTS_DIR / LAST_CHECKPOINT_LINK / PRETRAINED_MODEL_DIR
        candidates = [path, path / PRETRAINED_MODEL_DIR, run_last]
        for candidate in candidates:
            if (candidate / "config.json").is_file():
                return candidate
        raise CheckpointNotFoundError(
            f"{path} holds no LeRobot checkpoint: no config.json in " + ", ".join(str(c) for c in candidates)
        )
    if looks_local(path_or_hub_id):
        raise CheckpointNotFoundError(missing("checkpoint", path))
    return _download(ref, revision)


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        local = snapshot_download(
            repo_id=repo_id, revision=revision, allow_patterns=["*.json", "*.safetensors", "*.md", "*.txt"]
        )
    except Exception as exc:  # offline, unknown repo, no auth: all the same to the user
        reason = hub_failure(exc) or f"it could not be fetched from the Hugging Face Hub ({type(exc).__name__})"
        raise CheckpointNotFoundError(missing("checkpoint", repo_id, reason)) from exc
    folder = Path(local)
    if not (folder / "config.json").is_file():
        raise CheckpointNotFoundError(f"Hub repo '{repo_id}' has no config.json: not a LeRobot policy")
    return folder


def import_policy_class(policy_type: str) -> type:
    """LeRobot's policy class for ``policy_type``, with a clear error for missing extras."""
    from lerobot.policies.factory import get_policy_class

    try:
        return get_policy_class(policy_type)
    except ImportError as exc:
        raise MissingDependencyError.for_policy(policy_type, exc) from exc
    except ValueError as exc:
        raise PolicyLoadError(str(exc)) from exc


def processor_steps(folder: str | Path, which: str = "preprocessor") -> set[str]:
    """Registry names of the steps in a checkpoint's saved ``policy_<which>.json`` (empty if none)."""
    path = Path(folder) / f"policy_{which}.json"
    if not path.is_file():
        return set()
    steps = json.loads(path.read_text()).get("steps", [])
    return {s["registry_name"] for s in steps if s.get("registry_name")}


def chunk_size_of(config: Any) -> int:
    """Rows ``predict_action_chunk`` returns: Diffusion gives ``n_action_steps``, the rest ``chunk_size``."""
    if getattr(config, "type", "") in ("diffusion", "vqbet", "tdmpc") or not hasattr(config, "chunk_size"):
        return int(config.n_action_steps)
    return int(config.chunk_size)


def observation_steps(policy: Any) -> int:
    """Frames per input a policy stacks on a time axis: its ``n_obs_steps`` if it keeps an observation queue.

    Diffusion, VQ-BeT and multi-task DiT queue observations (inputs ``(B, n, ...)``, also for
    ``n_obs_steps=1``); every other policy takes one frame without a time axis (0).
    """
    queues = getattr(policy, "_queues", None) or {}
    if not any(key != "action" for key in queues):
        return 0
    return int(getattr(policy.config, "n_obs_steps", 1) or 1)


def noise_shape(policy: Any) -> tuple[int, int] | None:
    """``(rows, dim)`` of one item's initial noise, for policies whose ``predict_action_chunk`` takes ``noise``.

    Diffusion denoises its whole ``horizon`` window of actions; flow VLAs (SmolVLA) their chunk
    at ``max_action_dim``. None: the policy samples nothing, or takes no noise argument.
    """
    try:
        takes_noise = "noise" in inspect.signature(policy.predict_action_chunk).parameters
    except (TypeError, ValueError):
        return None
    config = policy.config
    if not takes_noise:
        return None
    if getattr(config, "horizon", None) and getattr(config, "action_feature", None) is not None:
        return int(config.horizon), int(config.action_feature.shape[0])
    if getattr(config, "max_action_dim", None) and getattr(config, "chunk_size", None):
        return int(config.chunk_size), int(config.max_action_dim)
    return None


def policy_supports_rtc(policy: Any) -> bool:
    """True when the policy declares RTC and its ``predict_action_chunk`` takes the RTC arguments."""
    supports = getattr(policy, "supports_rtc", None)
    if not callable(supports) or not supports():
        return False
    try:
        inspect.signature(policy.predict_action_chunk).bind(
            object(), inference_delay=0, prev_chunk_left_over=None
        )
    except (TypeError, ValueError):
        return False
    return True


def read_feature_names(folder: Path) -> dict[str, Any]:
    """The names recorded next to a checkpoint by :func:`write_feature_names` ({} if none)."""
    path = Path(folder) / FEATURES_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_feature_names(
    directory: str | Path,
    *,
    state_names: Sequence[str],
    action_names: Sequence[str],
    cameras: Mapping[str, Sequence[int]] | None = None,
    fps: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Record the names behind the checkpoint's vectors so a loader can match them to a robot."""
    path = Path(directory) / FEATURES_FILE
    data = {
        "state_names": list(state_names),
        "action_names": list(action_names),
        "cameras": {name: list(hw) for name, hw in (cameras or {}).items()},
        "fps": fps,
        **dict(extra or {}),
    }
    path.write_text(json.dumps(data, indent=2))
    return path


def check_robot_features(
    config: Any,
    names: Mapping[str, Any],
    robot: Any,
    *,
    camera_map: Mapping[str, str] | None = None,
    source: str = "",
) -> None:
    """Raise :class:`FeatureMismatchError` unless the checkpoint's state, action and cameras fit ``robot``.

    ``robot`` needs ``joint_names``, ``action_names`` and ``cameras`` (name -> (H, W)) like
    ``robot_drivers.RobotFeatures``. Names are compared when the checkpoint recorded them
    (``vlash_features.json``), otherwise only sizes.
    """
    from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

    problems: list[str] = []
    inputs = dict(config.input_features)
    robot_state = tuple(getattr(robot, "joint_names", ()))
    robot_action = tuple(getattr(robot, "action_names", ()))
    if OBS_STATE in inputs:
        problems += _compare("state", inputs[OBS_STATE].shape[0], names.get("state_names"), robot_state)
    problems += _compare(
        "action", config.output_features[ACTION].shape[0], names.get("action_names"), robot_action
    )

    to_ckpt = dict(camera_map or {})
    robot_cams = {to_ckpt.get(name, name): name for name in dict(getattr(robot, "cameras", {}) or {})}
    prefix = OBS_IMAGES + "."
    ckpt_cams = [k.removeprefix(prefix) for k in inputs if k.startswith(prefix)]
    missing = [c for c in ckpt_cams if c not in robot_cams]
    if missing and getattr(config, "type", "") in TOLERATES_MISSING_CAMERAS and len(missing) < len(ckpt_cams):
        missing = []  # the policy masks the absent slots
    if missing:
        problems.append(
            f"cameras: checkpoint needs {ckpt_cams}, robot has {sorted(robot_cams.values())} "
            f"(missing {missing}; rename with camera_map={{'robot_name': 'checkpoint_name'}})"
        )
    if problems:
        where = f" {source}" if source else ""
        raise FeatureMismatchError(f"checkpoint{where} does not match the robot:\n  " + "\n  ".join(problems))


def _compare(what: str, dim: int, ckpt_names: Sequence[str] | None, robot_names: Sequence[str]) -> list[str]:
    ckpt_names = list(ckpt_names) if ckpt_names else None
    if dim == len(robot_names) and (ckpt_names is None or ckpt_names == list(robot_names)):
        return []
    ckpt = f"{dim} values " + (f"{ckpt_names}" if ckpt_names else "(names not recorded)")
    return [f"{what}: checkpoint has {ckpt}; robot has {len(robot_names)} values {list(robot_names)}"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else Apple MPS, else CPU."""
    import torch

    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def compile_chunk_fn(policy: Any) -> bool:
    """Wrap ``predict_action_chunk`` in ``torch.compile`` (as ``lerobot-rollout`` does)."""
    import torch

    try:
        policy.predict_action_chunk = torch.compile(policy.predict_action_chunk)
    except Exception as exc:  # compile is an optimisation: never fatal
        log.warning("torch.compile unavailable (%s); running eagerly", exc)
        return False
    return True


def rtc_config(rtc: bool | Mapping[str, Any] | None) -> Any | None:
    """LeRobot's ``RTCConfig`` for ``load_policy(rtc=...)``: None when off, a mapping configures it."""
    if rtc is False:
        return None
    from lerobot.policies.rtc import RTCConfig

    return RTCConfig(**dict(rtc)) if isinstance(rtc, Mapping) else RTCConfig()


def keyed_noise(shape: tuple[int, int], keys: Sequence[int | None]) -> Any:
    """``(B, *shape)`` float32 normal noise on the CPU; item i from a generator seeded with ``keys[i]``.

    A key gives the same noise whatever the batch around it and the device; ``None`` items use
    torch's global generator.
    """
    import torch

    parts = []
    for key in keys:
        generator = None if key is None else torch.Generator().manual_seed(int(key) & 0xFFFF_FFFF_FFFF_FFFF)
        parts.append(torch.randn(shape, generator=generator, dtype=torch.float32))
    return torch.stack(parts)
