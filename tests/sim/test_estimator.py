"""The model-based future-state estimator: known by name (an entry point), more accurate than ``target``."""

import numpy as np

import sim
from sim.model_estimator import ModelEstimator
from vlash.future_state import known_estimators, make_estimator


def test_model_estimator_is_registered_and_built_from_options():
    assert "model" in known_estimators()
    env = sim.make_task("track")
    estimator = make_estimator("model", **env.unwrapped.estimator_options)
    assert isinstance(estimator, ModelEstimator) and estimator.name == "model"
    state = np.zeros(6, np.float32)
    np.testing.assert_array_equal(estimator.estimate(state, np.zeros((0, 6), np.float32)), state)
    env.close()


def test_model_estimate_matches_the_simulated_future():
    env = sim.make_task("reach")
    obs, _ = env.reset(seed=0)
    start, velocity = obs["state"], obs["velocity"]
    queued = start + np.linspace(0.02, 0.2, 4, dtype=np.float32)[:, None]
    for action in queued:
        obs, *_ = env.step(action)
    estimate = ModelEstimator().estimate(start, queued, {"velocity": velocity})
    assert np.abs(estimate - obs["state"]).max() < 1e-4
    assert np.abs(queued[-1] - obs["state"]).max() > 0.05  # the last target is not where the arm is


def test_model_estimator_beats_target_estimator_on_track():
    figures = sim.bench_estimators("track", delay_steps=4, episodes=1)
    assert figures["model"] < 0.5 * figures["target"]
    assert figures["model_mismatched"] < figures["target"]  # even with a 20 % wrong servo model
    assert figures["target"] < figures["none"]


def test_model_estimator_holds_on_non_finite_rows():
    estimator = ModelEstimator()
    state = np.zeros(6, np.float32)
    queued = np.array([[np.nan] * 6, [0.1] * 6], np.float32)
    assert np.all(np.isfinite(estimator.estimate(state, queued, {"velocity": np.full(6, np.inf)})))
