"""whack_fast: whack at 50 Hz with a window short enough that the reaction time decides hits."""

import warnings

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

import sim
from sim.tasks.whack import FAST_PAUSE_S, FAST_WINDOW_S
from vlash.virtual_time import RunConfig, run_episode


def test_registered_with_its_fast_defaults_and_options_still_override():
    env = gym.make("vlash/whack_fast-v0", disable_env_checker=True)
    u = env.unwrapped
    assert u.task_name == "whack_fast" and u.fps == 50.0
    assert u.window_s == FAST_WINDOW_S and u.pause_s == FAST_PAUSE_S and u.window_steps == round(FAST_WINDOW_S * 50)
    env.close()
    slow = sim.make_task("whack_fast", window_s=3.0, fps=30.0).unwrapped
    assert slow.window_s == 3.0 and slow.fps == 30.0
    slow.close()
    assert sim.make_expert("whack_fast").fps == 50.0


def test_passes_gymnasium_env_checker():
    env = sim.make_task("whack_fast")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checker's advice on unbounded / unnormalised boxes
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def pads_hit(config: RunConfig, seeds) -> tuple[int, int]:
    env = sim.make_task("whack_fast")
    expert = sim.make_expert("whack_fast")
    hits = events = 0
    for seed in seeds:
        info = run_episode(env, expert, config, seed=seed).final_info
        hits += info["hits"]
        events += info["hits"] + info["misses"]
    env.close()
    return hits, events


def test_a_prompt_reaction_hits_the_pads_sync_at_k25_misses_some():
    seeds = (0, 1)
    prompt, events = pads_hit(RunConfig(mode="sync", execution_horizon="auto"), seeds)  # Δ = 0, K = 1
    late, _ = pads_hit(RunConfig(mode="sync", delay_steps=5, execution_horizon=25), seeds)  # a 100 ms model
    assert events == 4 * len(seeds)
    assert prompt >= events - 1 and late <= prompt - 2
