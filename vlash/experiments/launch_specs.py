"""Launch mappings for runs of the MuJoCo SO-101 driven by its scripted expert.

Used by the real-time benchmarks and by the end-to-end tests; the mapping is what a launch
file holds (pass it to :func:`vlash.launchfile.parse_launch`).
"""

from __future__ import annotations

from typing import Any

from vlash.experiments.parts import SIM_DRIVER, SIM_EXPERT


def sim_spec(name: str, mode: str, *, task: str = "reach", fps: float = 30, latency: float = 150,
             chunk_size: int = 50, horizon: int | str = 25, cameras: list[str] | None = None, seed: int = 0) -> dict[str, Any]:
    """One robot ``arm`` (the sim driver on ``task``) served by the expert behind ``latency`` ms."""
    return {
        "name": name,
        "fps": fps,
        "mode": mode,
        "inference": {"policy": {"factory": SIM_EXPERT, "task": task, "chunk_size": chunk_size}, "latency": latency},
        "robots": [{
            "id": "arm",
            "driver": {"factory": SIM_DRIVER, "task": task, "fps": fps, "cameras": cameras or [], "image_size": 128,
                       "seed": seed, "auto_reset": True},
            "chunk_size": chunk_size,
            "execution_horizon": horizon,
        }],
    }
