"""Fixtures for the policies tests: offline, few threads, tiny checkpoints and datasets built locally.

``HF_HUB_OFFLINE`` is set before anything imports huggingface_hub, and every test here runs with
outbound connections refused (loopback stays allowed), so nothing can reach the Hub.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import ipaddress  # noqa: E402
import socket  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # unix sockets
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any non-loopback connection for the duration of a test."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> None:
        if not _is_local(address):
            raise OSError(f"network access blocked in tests: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(scope="module", autouse=True)
def few_threads() -> Iterator[None]:
    """One torch thread: the machine is small and shared (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_act_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random state + environment-state ACT checkpoint (chunk 10) with processors."""
    from policies.testing import make_tiny_act_checkpoint

    return make_tiny_act_checkpoint(tmp_path_factory.mktemp("tiny_act"), chunk_size=10)


@pytest.fixture(scope="session")
def tiny_act_camera_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ACT checkpoint that also reads one 32x32 camera named ``front``."""
    from policies.testing import make_tiny_act_checkpoint

    return make_tiny_act_checkpoint(
        tmp_path_factory.mktemp("tiny_act_cam"), chunk_size=8, cameras={"front": (32, 32)}
    )


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-episode state-only LeRobot dataset (episodes of 20, 21, 22 frames)."""
    from policies.testing import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "ds", episodes=3, length=20)


@pytest.fixture(scope="session")
def tiny_diffusion_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``vlash train --policy diffusion`` (the small preset) for 4 offset-aware steps on a state-only
    dataset shaped like the sim's ``reach`` task (6 joints, 6 task-state values)."""
    from policies.testing import make_synthetic_dataset
    from policies.train import TrainOptions, train

    root = tmp_path_factory.mktemp("tiny_diffusion")
    dataset = make_synthetic_dataset(root / "ds", episodes=3, length=20, env_state_dim=6)
    options = TrainOptions(
        dataset=str(dataset),
        out=root / "run",
        policy="diffusion",
        steps=4,
        batch_size=8,
        max_delay_steps=2,
        save_every=0,
        progress=False,
    )
    return train(options).out
