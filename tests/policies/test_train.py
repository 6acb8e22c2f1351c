"""``vlash train`` on small synthetic LeRobot datasets (no simulator): layout, resume, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from policies.lerobot_adapter import load_policy
from policies.lerobot_data import load_columns, open_dataset
from policies.train import TrainOptions, _delayed_batch, train
from vlash.cli import main as vlash_main


def options(dataset: Path, out: Path, **kw) -> TrainOptions:
    base = dict(steps=4, batch_size=4, max_delay_steps=4, save_every=0, progress=False, chunk_size=8)
    base.update(kw)
    return TrainOptions(dataset=str(dataset), out=out, **base)


def test_train_writes_a_lerobot_checkpoint_that_loads(synthetic_dataset: Path, tmp_path: Path) -> None:
    result = train(options(synthetic_dataset, tmp_path / "run", steps=6, save_every=3))
    assert result.steps == 6 and np.isfinite(result.final_loss)
    ckpts = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["000003", "000006", "last"]
    model_dir = ckpts / "last" / "pretrained_model"
    for name in (
        "config.json",
        "model.safetensors",
        "train_config.json",
        "policy_preprocessor.json",
        "policy_postprocessor.json",
        "vlash_features.json",
    ):
        assert (model_dir / name).is_file(), name
    assert (ckpts / "last" / "training_state" / "optimizer_state.safetensors").is_file()

    # LeRobot's own loaders read it
    import lerobot.policies  # noqa: F401  (registers the policy configs)
    from lerobot.configs.train import TrainPipelineConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    assert ACTPolicy.from_pretrained(model_dir).config.chunk_size == 8
    assert TrainPipelineConfig.from_pretrained(model_dir).policy.type == "act"

    policy = load_policy(tmp_path / "run")
    assert policy.chunk_size == 8 and policy.features.extras == ("task_state",)
    chunk = policy.predict_chunk(policy.dummy_observation())
    assert chunk.shape == (8, 6) and chunk.dtype == np.float32 and np.isfinite(chunk).all()


def test_resume_continues_exactly(synthetic_dataset: Path, tmp_path: Path) -> None:
    train(options(synthetic_dataset, tmp_path / "straight", steps=6))
    train(options(synthetic_dataset, tmp_path / "split", steps=3))
    resumed = train(options(synthetic_dataset, tmp_path / "split", steps=6, resume=True))
    assert resumed.start_step == 3 and resumed.steps == 6
    a = load_file(tmp_path / "straight" / "checkpoints" / "000006" / "pretrained_model" / "model.safetensors")
    b = load_file(tmp_path / "split" / "checkpoints" / "000006" / "pretrained_model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_adam_is_fused_and_an_unfused_run_resumes(
    synthetic_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import policies.train as train_module

    params = [torch.nn.Parameter(torch.zeros(3))]
    adam = torch.optim.Adam(params)
    assert train_module.fuse_adam(adam) and adam.param_groups[0]["fused"] is True
    assert not train_module.fuse_adam(torch.optim.SGD(params, lr=0.1))
    with monkeypatch.context() as m:  # a run saved before the optimizer was fused
        m.setattr(train_module, "fuse_adam", lambda optimizer: False)
        train(options(synthetic_dataset, tmp_path / "old", steps=2))
    assert train(options(synthetic_dataset, tmp_path / "old", steps=3, resume=True)).start_step == 2


def test_out_folder_rules(synthetic_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="resume"):
        train(options(synthetic_dataset, tmp_path / "none", resume=True))
    train(options(synthetic_dataset, tmp_path / "run", steps=1))
    with pytest.raises(FileExistsError, match="--resume"):
        train(options(synthetic_dataset, tmp_path / "run", steps=1))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(options(tmp_path / "missing", tmp_path / "x"))


def test_delayed_batch_reads_the_shifted_rows(synthetic_dataset: Path) -> None:
    columns = load_columns(open_dataset(synthetic_dataset))
    assert len(columns) == 20 + 21 + 22
    feats = {"observation.state": None, "observation.environment_state": None}
    rows, delays = np.array([0, 5, 18, 19]), np.array([0, 3, 2, 4])
    batch = _delayed_batch(columns, rows, delays, 8, "action", feats)
    state = batch["observation.state"].numpy()
    np.testing.assert_array_equal(state[0], columns.state[0])  # δ=0: s_t
    np.testing.assert_array_equal(state[1], columns.action[5 + 3 - 1])  # a_{t+δ-1}
    np.testing.assert_array_equal(state[3], columns.action[19])  # past the end: the last action
    np.testing.assert_array_equal(batch["action"].numpy()[1], columns.action[8:16])
    pad = batch["action_is_pad"].numpy()
    assert not pad[1].any() and pad[2].tolist() == [True] * 8 and pad[3].all()  # episode 0 ends at row 20
    np.testing.assert_array_equal(batch["observation.environment_state"].numpy(), columns.env_state[rows])
    batch = _delayed_batch(columns, rows, delays, 8, "state", feats)
    np.testing.assert_array_equal(batch["observation.state"].numpy()[1], columns.state[8])


def test_state_action_size_mismatch_names_the_switch(tmp_path: Path, capsys) -> None:
    from policies.testing import make_synthetic_dataset

    ds = make_synthetic_dataset(tmp_path / "ds7", episodes=2, length=12, state_dim=7, action_dim=6)
    with pytest.raises(ValueError, match="--state-source state"):
        train(options(ds, tmp_path / "a"))
    code = vlash_main(
        [
            "train",
            "--dataset",
            str(ds),
            "--out",
            str(tmp_path / "b"),
            "--max-delay-steps",
            "2",
            "--steps",
            "1",
            "--no-progress",
        ]
    )
    assert code == 2 and "--state-source state" in capsys.readouterr().err
    assert train(options(ds, tmp_path / "c", steps=1, state_source="state")).steps == 1
    assert train(options(ds, tmp_path / "d", steps=1, max_delay_steps=0)).steps == 1  # plain training


def test_camera_dataset_trains(tmp_path: Path) -> None:
    from policies.testing import make_synthetic_dataset

    ds = make_synthetic_dataset(tmp_path / "cam", episodes=2, length=10, cameras={"front": (24, 24)})
    result = train(options(ds, tmp_path / "run", steps=2, batch_size=2))
    policy = load_policy(result.out)
    assert policy.features.cameras == {"front": (24, 24)}
    assert policy.predict_chunk(policy.dummy_observation()).shape == (8, 6)
    with pytest.raises(ValueError, match="no \\['side'\\]"):
        train(options(ds, tmp_path / "run2", cameras=("side",)))
    renamed = train(options(ds, tmp_path / "run3", steps=1, batch_size=2, camera_map={"front": "top"}))
    assert load_policy(renamed.out).features.cameras == {"top": (24, 24)}


def test_bad_policy_reference(synthetic_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither a LeRobot policy type"):
        train(options(synthetic_dataset, tmp_path / "x", policy="not_a_policy"))
    with pytest.raises(ValueError, match="no field 'warp_drive'"):
        train(options(synthetic_dataset, tmp_path / "y", overrides={"warp_drive": 1}))


def test_history_batch_stacks_recorded_past_and_the_delayed_state(synthetic_dataset: Path) -> None:
    columns = load_columns(open_dataset(synthetic_dataset))
    feats = {"observation.state": None, "observation.environment_state": None}
    rows, delays = np.array([0, 5, 20]), np.array([2, 3, 0])  # row 20 starts episode 1
    batch = _delayed_batch(columns, rows, delays, 16, "action", feats, obs_steps=2, action_start=-1)
    state = batch["observation.state"].numpy()
    assert state.shape == (3, 2, 6)
    np.testing.assert_array_equal(state[0], [columns.state[0], columns.action[1]])  # s_{-1} clamps to s_0
    np.testing.assert_array_equal(state[1], [columns.state[4], columns.action[7]])  # s_{t-1}, a_{t+δ-1}
    np.testing.assert_array_equal(state[2], [columns.state[20], columns.state[20]])  # never episode 0's rows
    env = batch["observation.environment_state"].numpy()
    np.testing.assert_array_equal(env[1], columns.env_state[[4, 5]])  # at t-1, t: not shifted
    action, pad = batch["action"].numpy(), batch["action_is_pad"].numpy()
    assert action.shape == (3, 16, 6)
    np.testing.assert_array_equal(action[1], columns.action[np.minimum(np.arange(7, 23), 19)])  # a_{t+δ-1} on
    assert pad[1].tolist() == [False] * 13 + [True] * 3  # episode 0 ends at row 20
    assert pad[2, 0] and not pad[2, 1:].any()  # a_{t-1} is before episode 1


def test_image_cache_gives_what_lerobot_decodes(tmp_path: Path) -> None:
    import torch

    from policies.lerobot_data import FrameImages, ImageCache
    from policies.testing import make_synthetic_dataset

    ds = open_dataset(make_synthetic_dataset(tmp_path / "cam", episodes=2, length=4, cameras={"front": (16, 16)}))
    keys = ["observation.images.front"]
    assert ImageCache.load(ds, keys, max_bytes=100) is None  # does not fit: decoded per step instead
    cache = ImageCache.load(ds, keys, max_bytes=2**20)
    rows = np.array([0, 3, 8, 3])
    direct = next(iter(torch.utils.data.DataLoader(FrameImages(ds, keys), batch_sampler=[rows.tolist()])))
    assert torch.equal(cache.frames(rows)[keys[0]], direct[keys[0]])
