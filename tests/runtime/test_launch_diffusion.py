"""A real (tiny, locally trained) LeRobot Diffusion checkpoint with observation history, through serve and control."""

import math

from policies.testing import make_synthetic_dataset
from policies.train import TrainOptions, train
from vlash.commands.launch import launch
from vlash.experiments.launch_specs import sim_spec
from vlash.launchfile import parse_launch
from vlash.runlog import read_jsonl


def test_diffusion_checkpoint_drives_the_sim_through_serve_and_control(tmp_path):
    dataset = make_synthetic_dataset(tmp_path / "ds", episodes=3, length=20, env_state_dim=6)  # reach's layout
    run = train(TrainOptions(dataset=str(dataset), out=tmp_path / "train", policy="diffusion", steps=2,
                             batch_size=8, max_delay_steps=2, save_every=0, progress=False)).out
    spec = sim_spec("e2e_diffusion", "vlash", latency=0, horizon=4, chunk_size=8)
    spec["inference"] = {"policy": {"factory": "policies.lerobot_adapter:load_policy", "path_or_hub_id": str(run),
                                    "device": "cpu"}}
    summary = launch(parse_launch(spec, "e2e"), tmp_path / "run", duration=10.0, quiet=True)  # loading + ~0.1-0.3 s a chunk on this CPU
    robot = summary["robots"]["arm"]
    assert robot["exit_code"] == 0 and robot["chunks"] >= 2
    chunks = read_jsonl(tmp_path / "run" / "arm" / "chunks.jsonl")
    assert all(c["mode"] == "vlash" for c in chunks)
    ticks = read_jsonl(tmp_path / "run" / "arm" / "ticks.jsonl")
    executed = [t for t in ticks if t["chunk"] >= 0]
    assert executed and all(math.isfinite(x) for t in executed for x in t["action"])
