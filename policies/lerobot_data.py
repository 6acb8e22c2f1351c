"""Opening LeRobot datasets for training: the low-dimensional columns as numpy, images per frame.

The delay augmentation (``policies.offsets``) reads states and actions at arbitrary rows, so the
low-dimensional columns are loaded once into memory (a few MB even for hundreds of episodes);
images are read per frame through LeRobot's own ``__getitem__`` (decoding, transforms).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policies.loading import hub_failure, looks_local, missing
from policies.offsets import episode_ends, episode_starts


def video_backend() -> str:
    """``torchcodec`` when it actually loads (it needs a system FFmpeg), else ``pyav``; quietly."""
    if importlib.util.find_spec("torchcodec") is not None:
        try:
            importlib.import_module("torchcodec")
            return "torchcodec"
        except Exception:  # installed but its FFmpeg libraries are missing
            pass
    return "pyav"


def quiet_datasets_progress() -> None:
    """Silence the HF ``datasets`` per-episode "Map" bars (our own bar reports progress)."""
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass


def dataset_folder(ref: str | Path) -> Path | None:
    """The local dataset folder ``ref`` names, or None for a Hub id ``user/name`` (cheap: imports nothing).

    Raises FileNotFoundError, one line, for a local-looking name (:func:`~policies.loading.looks_local`) that is not
    there and for a folder without ``meta/info.json``.
    """
    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "meta" / "info.json").is_file():
            raise FileNotFoundError(f"{path} is not a LeRobot dataset (no meta/info.json)")
        return path
    if looks_local(ref):  # data/reach50, ./x, ~/x, runs/...: a missing folder, never a Hub lookup
        raise FileNotFoundError(missing("dataset", ref, hint=f"; record one with: vlash record --task TASK --out {ref}"))
    return None


def open_dataset(ref: str | Path, *, repo_id: str | None = None) -> Any:
    """Open a LeRobot dataset from a local folder (or a Hub repo id ``user/name``), with actionable errors: a
    missing local-looking folder is one line (:func:`dataset_folder`), and so is a Hub id the Hub does not
    have or cannot be reached for."""
    path = dataset_folder(ref)
    try:
        from lerobot.datasets import LeRobotDataset
    except ImportError as exc:
        raise RuntimeError(
            f"LeRobot's dataset support is not installed ({exc}); pip install 'lerobot[dataset]==0.6.1'"
        ) from exc
    if path is not None:
        return LeRobotDataset(repo_id or f"local/{path.name}", root=path, video_backend=video_backend())
    try:
        return LeRobotDataset(str(ref), video_backend=video_backend())
    except Exception as exc:
        reason = hub_failure(exc)
        if reason is None:
            raise
        raise FileNotFoundError(missing("dataset", ref, reason)) from exc


@dataclass(frozen=True)
class Columns:
    """The dataset's low-dimensional columns, one row per frame (row = position in the loaded data)."""

    state: np.ndarray  # (N, S) float32
    action: np.ndarray  # (N, A) float32
    episode_end: np.ndarray  # (N,) int64, exclusive end row of each row's episode
    episode_start: np.ndarray  # (N,) int64, first row of each row's episode
    env_state: np.ndarray | None  # (N, E) float32
    tasks: list[str]  # (N,) task text per row

    def __len__(self) -> int:
        return int(self.action.shape[0])


def load_columns(dataset: Any) -> Columns:
    """Read state, action, environment state, episode bounds and task text of every row."""
    from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_STATE

    hf = dataset.hf_dataset
    names = set(hf.column_names)
    for key in (OBS_STATE, ACTION):
        if key not in names:
            raise ValueError(f"dataset has no '{key}' column (columns: {sorted(names)})")
    wanted = [OBS_STATE, ACTION, "episode_index", "task_index"] + (
        [OBS_ENV_STATE] if OBS_ENV_STATE in names else []
    )
    cols = hf.with_format("numpy").select_columns(wanted)[:]
    n = len(cols["episode_index"])
    task_by_index = {
        int(i): str(t)
        for t, i in zip(dataset.meta.tasks.index, dataset.meta.tasks["task_index"], strict=True)
    }
    return Columns(
        state=np.asarray(cols[OBS_STATE], np.float32).reshape(n, -1),
        action=np.asarray(cols[ACTION], np.float32).reshape(n, -1),
        episode_end=episode_ends(cols["episode_index"]),
        episode_start=episode_starts(cols["episode_index"]),
        env_state=np.asarray(cols[OBS_ENV_STATE], np.float32).reshape(n, -1)
        if OBS_ENV_STATE in cols
        else None,
        tasks=[task_by_index.get(int(i), "") for i in cols["task_index"]],
    )


class FrameImages:
    """A map-style dataset of the camera images at each row (``{"row": i, key: (3, H, W) float}``)."""

    def __init__(self, dataset: Any, image_keys: list[str]) -> None:
        self.dataset = dataset
        self.image_keys = list(image_keys)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, row: int) -> dict[str, Any]:
        item = self.dataset[int(row)]
        return {"row": int(row), **{k: item[k] for k in self.image_keys}}


class ImageCache:
    """Every frame of the given cameras decoded once, kept as uint8 ``(N, C, H, W)`` arrays in memory.

    :meth:`frames` gives what :class:`FrameImages` gives through a loader (float ``[0, 1]``,
    ``(B, C, H, W)``), exactly: LeRobot's decoded images are 8-bit values divided by 255.
    """

    def __init__(self, images: dict[str, np.ndarray]) -> None:
        self.images = images

    @classmethod
    def load(
        cls, dataset: Any, image_keys: list[str], *, max_bytes: float, num_workers: int = 0
    ) -> ImageCache | None:
        """Decode all frames of ``image_keys``, or return None when they would exceed ``max_bytes``."""
        import torch

        shapes = {k: tuple(dataset.meta.features[k]["shape"]) for k in image_keys}  # (H, W, C)
        need = len(dataset) * sum(int(np.prod(s)) for s in shapes.values())
        if not image_keys or need > max_bytes:
            return None
        loader = torch.utils.data.DataLoader(
            FrameImages(dataset, image_keys), batch_size=256, shuffle=False, num_workers=num_workers
        )
        parts: dict[str, list[np.ndarray]] = {k: [] for k in image_keys}
        for batch in loader:
            for k in image_keys:
                parts[k].append((batch[k] * 255.0).round().clamp(0, 255).to(torch.uint8).numpy())
        return cls({k: np.concatenate(v) for k, v in parts.items()})

    def frames(self, rows: np.ndarray) -> dict[str, Any]:
        """``{key: (B, C, H, W) float tensor in [0, 1]}`` at ``rows``."""
        import torch

        return {k: torch.from_numpy(v[rows]).float().div_(255.0) for k, v in self.images.items()}
