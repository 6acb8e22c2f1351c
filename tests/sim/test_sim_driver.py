"""The sim driver: Driver protocol, read/send, non-blocking frames, render thread lifecycle."""

import numpy as np
import pytest

from sim.driver import SimDriver
from tests.sim.waiting import wait_for
from vlash.contracts import Driver


def test_sim_driver_reads_sends_and_stops_its_render_thread():
    driver = SimDriver("whack", cameras=("front", "wrist"), image_size=48, seed=0)
    assert isinstance(driver, Driver)
    assert driver.features.cameras == {"front": (48, 48), "wrist": (48, 48)}
    with pytest.raises(RuntimeError):
        driver.read()
    driver.connect()
    assert driver.render_thread_alive
    reading = driver.read()
    assert reading.state.shape == (6,) and set(reading.images) == {"front", "wrist"}
    assert reading.images["front"].shape == (48, 48, 3)
    assert set(reading.extras) == {"velocity", "task_state"} and reading.events["success"] == 0.0
    for _ in range(20):
        driver.send_action(driver.read().state)
    reading = driver.read()
    assert reading.events["step"] == 20.0
    # frames come from the render thread: the newest state gets rendered without the loop waiting on it
    wait_for(lambda: driver.read().events["image_age_steps"] == 0.0, "the render thread to catch up")
    driver.send_action(np.full(6, np.nan, np.float32))  # rejected by the simulation, counted
    assert driver.counters["actions_rejected"] == 1
    driver.disconnect()
    assert not driver.render_thread_alive


def test_sim_driver_auto_reset_starts_a_new_episode():
    driver = SimDriver("reach", cameras=(), max_steps=3, auto_reset=True)
    driver.connect()
    for _ in range(3):
        driver.send_action(driver.read().state)
    reading = driver.read()
    assert reading.events["episode"] == 1.0 and reading.events["step"] == 0.0 and reading.images == {}
    driver.disconnect()


def test_auto_reset_leaves_the_arm_where_it_is_and_resamples_only_the_task():
    with SimDriver("reach", cameras=(), max_steps=20, auto_reset=True, max_joint_speed=None) as driver:
        start = driver.read()
        pose = start.state + np.array([0.3, -0.2, 0.2, 0.1, 0.0, 0.0], np.float32)
        for _ in range(19):
            driver.send_action(pose)
        before = driver.read()
        driver.send_action(pose)  # the 20th step ends the episode
        after = driver.read()
    assert after.events["episode"] == 1.0 and after.events["step"] == 0.0
    assert np.abs(after.state - before.state).max() < 0.02  # one more physics step toward the same target
    assert np.abs(after.state - start.state).max() > 0.1  # not teleported home
    assert not np.allclose(after.extras["task_state"], before.extras["task_state"])  # a new goal


def test_an_explicit_reset_still_starts_at_home():
    with SimDriver("reach", cameras=(), max_joint_speed=None) as driver:
        home = driver.read().state
        for _ in range(10):
            driver.send_action(home + 0.3)
        driver.reset()
        assert np.abs(driver.read().state - home).max() < 0.1
