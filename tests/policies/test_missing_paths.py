"""A dataset or checkpoint that is not there is one line naming the missing folder, never a Hub traceback.

Local-looking names (``data/reach50``, ``./x``, ``runs/...``) are never looked up on the Hub; a ``user/name``
that is not a folder here is, and when the Hub cannot be reached (here: an endpoint on a closed loopback
port) the line says so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from policies.lerobot_data import open_dataset
from policies.loading import CheckpointNotFoundError, hub_failure, looks_local, resolve_checkpoint
from vlash.launchfile import free_port

REPO = Path(__file__).resolve().parents[2]


def test_local_looking_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for ref in ("data/reach50", "runs/act", "./x", "../x", "/abs/x", "~/x", "a\\b", "reach50", "a/b/c", Path("u/n")):
        assert looks_local(ref), ref
    assert not looks_local("lerobot/pusht") and not looks_local("someone/reach50")
    (tmp_path / "someone").mkdir()  # a folder of that first component here: the name is a path
    assert looks_local("someone/reach50")


def test_hub_failure_names_the_cause_and_leaves_other_errors_alone() -> None:
    def chained(cause: BaseException) -> BaseException:
        try:
            try:
                raise cause
            except BaseException as inner:
                raise FileNotFoundError("meta/info.json") from inner
        except FileNotFoundError as outer:
            return outer

    assert "could not be reached" in hub_failure(chained(socket.gaierror(-2, "Name or service not known")))
    assert "could not be reached" in hub_failure(chained(ConnectionRefusedError(111, "refused")))
    assert hub_failure(chained(KeyError("observation.state"))) is None
    assert hub_failure(ValueError("bad shape")) is None


def test_missing_local_dataset_and_checkpoint_are_missing_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^dataset folder data/reach50 does not exist; record one with"):
        open_dataset("data/reach50")
    with pytest.raises(CheckpointNotFoundError, match=r"^checkpoint folder runs/act does not exist"):
        resolve_checkpoint("runs/act")


def test_hub_id_offline_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # HF_HUB_OFFLINE is set for these tests (conftest)
    with pytest.raises(FileNotFoundError, match=r"no dataset folder someone/reach50 \(it does not exist here, and "):
        open_dataset("someone/reach50")


def run_vlash(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``vlash ARGS`` in ``cwd`` with the Hub's endpoint on a closed loopback port: unreachable, at once."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "vlash.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


def test_vlash_train_on_a_missing_dataset_says_so_in_one_line(tmp_path: Path) -> None:
    local = run_vlash(["train", "--dataset", "data/reach50", "--out", "run", "--steps", "1"], tmp_path)
    assert local.returncode == 2 and local.stdout == ""
    assert local.stderr.splitlines() == [
        "vlash train: dataset folder data/reach50 does not exist; record one with: vlash record --task TASK "
        "--out data/reach50"]  # and no Hub lookup: its failure would be named
    hub = run_vlash(["train", "--dataset", "someone/reach50", "--out", "run", "--steps", "1"], tmp_path)
    assert hub.returncode == 2 and "Traceback" not in hub.stderr
    (line,) = hub.stderr.splitlines()
    assert line.startswith("vlash train: no dataset folder someone/reach50 (it does not exist here, and the "
                           "Hugging Face Hub could not be reached (")


def test_vlash_eval_on_a_missing_checkpoint_says_so_in_one_line(tmp_path: Path) -> None:
    grid = ["--tasks", "reach", "--modes", "sync", "--delays", "0", "--episodes", "1", "--workers", "1", "--out", "ev"]
    local = run_vlash(["eval", "--policies", "runs/act_reach", *grid], tmp_path)
    assert local.returncode == 2
    assert [x for x in local.stderr.splitlines() if x.startswith("vlash")] == [
        "vlash eval: checkpoint folder runs/act_reach does not exist"]
    hub = run_vlash(["eval", "--policies", "someone/act_reach", *grid], tmp_path)
    assert hub.returncode == 2 and "Traceback" not in hub.stderr
    (line,) = [x for x in hub.stderr.splitlines() if x.startswith("vlash")]
    assert line.startswith("vlash eval: no checkpoint folder someone/act_reach (it does not exist here, and the "
                           "Hugging Face Hub could not be reached (")
