"""`vlash eval` on a checkpoint: the chunk size comes from the checkpoint, the estimator from the one default rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlash.cli import main as vlash_main
from vlash.experiments.evaluation import Cell, run_cell


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ACT checkpoint for the reach task (6 joints, 6 task values), chunk size 8."""
    import torch

    from policies.testing import make_tiny_act_checkpoint

    torch.set_num_threads(1)
    return make_tiny_act_checkpoint(tmp_path_factory.mktemp("act"), env_state_dim=6, chunk_size=8)


def test_a_checkpoint_cell_uses_the_checkpoint_chunk_size(checkpoint: Path) -> None:
    vlash = run_cell(Cell("reach", "vlash", 2, str(checkpoint), (0,), chunk_size=50))
    naive = run_cell(Cell("reach", "naive", 2, str(checkpoint), (0,), chunk_size=50))
    assert vlash["chunk_size"] == naive["chunk_size"] == 8  # not the expert's 50
    assert vlash["execution_horizon"] == naive["execution_horizon"] == 4  # default: half the chunk
    assert vlash["estimator"] == "target" and naive["estimator"] == "none"  # absolute actions, by the default rule
    assert vlash["episodes"] == 1


def test_the_expert_uses_the_cell_chunk_size() -> None:
    record = run_cell(Cell("reach", "vlash", 1, "expert", (0,), chunk_size=20, execution_horizon=5))
    assert (record["chunk_size"], record["execution_horizon"], record["estimator"]) == (20, 5, "target")


def test_eval_command_on_a_checkpoint(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "eval"
    argv = ["eval", "--tasks", "reach", "--policies", str(checkpoint), "--modes", "vlash", "--delays", "1",
            "--episodes", "1", "--workers", "1", "--out", str(out)]
    assert vlash_main(argv) == 0
    [record] = json.loads((out / "results.json").read_text())
    assert (record["chunk_size"], record["execution_horizon"], record["estimator"]) == (8, 4, "target")
    capsys.readouterr()
    # a horizon longer than the checkpoint's chunk is one clear line, exit 2
    assert vlash_main([*argv[:-2], "--execution-horizon", "20", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vlash eval: ") and "execution_horizon" in err[-1] and "8" in err[-1]


@pytest.mark.parametrize(("option", "value"), [("--modes", "warp"), ("--episodes", "0"), ("--delays", "-1"),
                                               ("--execution-horizon", "0")])
def test_eval_rejects_bad_options(option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert vlash_main(["eval", option, value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vlash eval: {option}") and len(err.splitlines()) == 1


def test_a_run_folder_that_trained_on_is_loaded_again_not_served_from_the_cache(tmp_path: Path) -> None:
    """The study gates a run folder, trains it on, and gates it again in one process: the second gate must
    see the new checkpoint (it once re-used the first one, cached by the folder's path)."""
    import numpy as np

    from policies.testing import make_tiny_act_checkpoint
    from vlash.experiments.evaluation import checkpoint_key, make_policy

    run = tmp_path / "run"
    for step, seed in (("000001", 1), ("000002", 2)):
        make_tiny_act_checkpoint(run / "checkpoints" / step / "pretrained_model", env_state_dim=6, chunk_size=8,
                                 seed=seed)
    last = run / "checkpoints" / "last"
    last.symlink_to("000001")
    cell = Cell("reach", "sync", 0, str(run), (0,))
    env = type("Env", (), {"unwrapped": object()})()
    first = make_policy(cell, env)
    assert make_policy(cell, env) is first  # the same checkpoint: loaded once
    last.unlink()
    last.symlink_to("000002")  # trained on
    assert checkpoint_key(str(run)).endswith("000002")
    second = make_policy(cell, env)
    assert second is not first
    obs = second.dummy_observation()
    assert not np.allclose(first.predict_chunk(obs), second.predict_chunk(obs))
