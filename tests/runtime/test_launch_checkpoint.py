"""A real (tiny, locally created) LeRobot ACT checkpoint served over the bus to the MuJoCo SO-101."""

import math

from policies.testing import make_tiny_act_checkpoint
from vlash.commands.launch import launch
from vlash.experiments.launch_specs import sim_spec
from vlash.launchfile import parse_launch
from vlash.runlog import read_jsonl


def test_lerobot_checkpoint_drives_the_sim_through_serve_and_control(tmp_path):
    ckpt = make_tiny_act_checkpoint(tmp_path / "ckpt", env_state_dim=6, chunk_size=20, cameras=["front"], image_size=64)
    spec = sim_spec("e2e_act", "vlash", latency=0, horizon=10, chunk_size=20, cameras=["front"])
    spec["inference"] = {"policy": {"factory": "policies.lerobot_adapter:load_policy", "path_or_hub_id": str(ckpt),
                                    "device": "cpu"}}
    spec["robots"][0]["driver"]["image_size"] = 64
    summary = launch(parse_launch(spec, "e2e"), tmp_path / "run", duration=4.0, quiet=True)
    robot = summary["robots"]["arm"]
    assert robot["exit_code"] == 0 and robot["chunks"] >= 2
    chunks = read_jsonl(tmp_path / "run" / "arm" / "chunks.jsonl")
    assert all(c["mode"] == "vlash" and c["estimator"] == "target" for c in chunks)
    ticks = read_jsonl(tmp_path / "run" / "arm" / "ticks.jsonl")
    assert any(t["chunk"] >= 0 for t in ticks)
    assert all(math.isfinite(x) for t in ticks for x in t["action"])
