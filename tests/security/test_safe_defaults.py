"""Safe defaults: every shipped launch file, and the sim driver itself, limit the change per tick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.driver import SimDriver
from vlash.control import ControlConfig, ControlLoop
from vlash.launchfile import load_launch

LAUNCH = sorted((Path(__file__).resolve().parents[2] / "launch").glob("*.yaml"))
PER_TICK_LIMITS = ("max_joint_speed", "max_relative_target")  # sim driver, LeRobot robots


def test_the_sim_driver_limits_the_change_per_tick_by_default():
    driver = SimDriver("reach", cameras=(), fps=30.0)
    assert driver.features.max_step == pytest.approx((20.0 / 30.0,) * 6)
    assert SimDriver("reach", cameras=(), max_joint_speed=None).features.max_step is None


@pytest.mark.parametrize("path", LAUNCH, ids=[p.name for p in LAUNCH])
def test_every_shipped_launch_file_sets_a_per_tick_change_limit(path):
    spec = load_launch(path)
    for robot in spec.robots:
        options = robot.driver.options
        assert robot.max_step is not None or any(options.get(k) for k in PER_TICK_LIMITS), robot.id


class Wire:
    """Hands the robot one chunk that jumps 4 rad at once (as a broken policy did)."""

    def __init__(self) -> None:
        self.inbox, self.sent = [], {}

    def send(self, msg) -> bool:
        from vlash.messages import ActionChunk, Observation

        if isinstance(msg, Observation):
            jump = np.tile(msg.state + 4.0, (10, 1)).astype(np.float32)
            self.inbox.append(ActionChunk(msg.robot_id, 1, 1, msg.seq, msg.step, msg.step, jump))
        return True

    def poll(self):
        out, self.inbox = self.inbox, []
        return out

    def maybe_heartbeat(self, now):
        return False

    def seconds_since_heard(self):
        return 0.0


def test_a_policy_jump_reaches_the_sim_arm_at_most_one_limit_per_tick():
    with SimDriver("reach", cameras=()) as driver:
        loop = ControlLoop(driver, Wire(), ControlConfig(robot_id="arm", mode="naive", chunk_size=10, execution_horizon=10),
                           clock=lambda: 0.0, wall_clock=lambda: 0.0)
        actions = [loop.tick(k, k / 30.0)["action"] for k in range(8)]
    steps = np.abs(np.diff(np.asarray(actions), axis=0))
    assert steps.max() <= 20.0 / 30.0 + 1e-6 and loop.safety.counters["rate_limited"] > 0
