"""Headless cameras: every camera renders a non-constant frame; the render thread publishes and stops."""

import numpy as np
import pytest

import sim
from sim.cameras import CAMERA_NAMES, RenderThread
from tests.sim.waiting import wait_for


def test_each_camera_renders_a_non_constant_frame():
    env = sim.make_task("pick_place", cameras=CAMERA_NAMES, image_size=64)
    obs, _ = env.reset(seed=0)
    for name in CAMERA_NAMES:
        image = obs["images"][name]
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert image.std() > 5, name
    first = obs["images"]["wrist"].copy()
    for _ in range(10):
        obs, *_ = env.step(obs["state"] + np.float32(0.05))
    assert np.abs(obs["images"]["wrist"].astype(int) - first).mean() > 1  # the wrist camera moves
    env.close()


def test_render_mode_rgb_array_and_bad_camera_names():
    env = sim.make_task("reach", render_mode="rgb_array", image_size=32)
    env.reset(seed=0)
    assert env.render().shape == (32, 32, 3)
    env.close()
    with pytest.raises(ValueError):
        sim.make_task("reach", cameras=("top",))


def test_render_thread_renders_latest_snapshot_and_stops():
    env = sim.make_task("reach").unwrapped
    env.reset(seed=0)
    thread = RenderThread(env.model, ("front",), 32)
    assert thread.latest() == ({}, -1)
    thread.start()
    thread.publish(env.data, 0)
    assert thread.wait_first_frame(10.0)
    first = thread.latest()[0]["front"].copy()
    for step in range(1, 4):
        env.step(env.target + np.float32(0.1))
        thread.publish(env.data, step)
    wait_for(lambda: thread.latest()[1] == 3, "the newest snapshot to be rendered")
    frames, step = thread.latest()
    assert frames["front"].shape == (32, 32, 3) and not np.array_equal(frames["front"], first)  # the arm moved
    assert 2 <= thread.frames_rendered <= 4  # snapshots replaced before their turn are skipped, never queued
    thread.stop()
    assert not thread.alive
    assert thread.latest()[1] == 3
