"""What ``vlash train`` trains: the options shared by the training loop and the policy builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrainOptions:
    """What to train; mirrors the command-line flags of ``vlash train``."""

    dataset: str
    out: Path
    policy: str = "act"  # a LeRobot policy type, or a checkpoint folder / Hub id to fine-tune
    steps: int = 1000
    batch_size: int = 8
    max_delay_steps: int = 0
    state_source: str = "action"
    chunk_size: int | None = None
    cameras: tuple[str, ...] | None = None  # None: every camera in the dataset
    camera_map: dict[str, str] = field(default_factory=dict)  # dataset camera -> policy camera
    preset: str = "small"  # "small" (CPU-sized ACT / Diffusion from scratch) or "lerobot" (its defaults)
    overrides: dict[str, Any] = field(default_factory=dict)  # policy config fields
    lr: float | None = None
    save_every: int = 500
    resume: bool = False
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    image_cache_gb: float = 2.0  # decode every camera frame once into memory when they fit (0: never)
    progress: bool = True
