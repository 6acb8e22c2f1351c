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
