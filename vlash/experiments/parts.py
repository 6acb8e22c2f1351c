"""The concrete simulators and policies the experiments use, named by factory path.

The only place in ``vlash/`` (besides ``vlash/commands/``) that names ``sim`` or ``policies``;
each name is resolved with :func:`vlash.factory.resolve` when an experiment runs.
"""

from __future__ import annotations

SIM_TASK = "sim:make_task"  # (task name, **options) -> gymnasium env
SIM_EXPERT = "sim.experts:make_expert"  # (task name, chunk_size=..., ...) -> scripted expert Policy
SIM_DRIVER = "sim.driver:SimDriver"  # the MuJoCo SO-101 as a Driver
SIM_ESTIMATOR_BENCH = "sim:bench_estimators"  # future-state estimator accuracy on expert rollouts
CHECKPOINT_POLICY = "policies.lerobot_adapter:load_policy"  # (path or hub id, robot_features=...) -> Policy
