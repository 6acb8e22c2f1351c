"""``vlash bench eval``: episodes per second of virtual-time evaluation, one at a time vs batched, same grid.

Both runs evaluate the same cells (task x modes x delays, the same seeds) with the same policy; the
batched run steps ``--batch`` environments in lockstep and answers each step's requests in one policy
call. Reports episodes/s of each, the ratio, and whether every episode's outcome agreed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vlash.experiments.evaluation import Cell, run_cells


def _csv(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="a checkpoint folder (or 'expert')")
    parser.add_argument("--task", default="detour", help="sim task (default: %(default)s)")
    parser.add_argument("--modes", type=_csv(str), default=["naive", "vlash"], help="default: naive,vlash")
    parser.add_argument("--delays", type=_csv(int), default=[1, 4], help="default: 1,4")
    parser.add_argument("--execution-horizon", type=int, default=4, help="K (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=32, help="episodes per cell (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=32, help="environments in lockstep (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=20000, help="first seed (default: %(default)s)")
    parser.add_argument("--out", default="runs/bench_eval", help="where bench_eval.json/.md go (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1 or args.batch < 2:
        print("vlash bench eval: --episodes must be >= 1 and --batch >= 2", file=sys.stderr)
        return 2
    seeds = tuple(range(args.seed, args.seed + args.episodes))
    result: dict = {"policy": args.policy, "task": args.task, "modes": args.modes, "delays": args.delays,
                    "execution_horizon": args.execution_horizon, "episodes_per_cell": args.episodes}
    outcomes = {}
    for label, batch in (("one at a time", 1), (f"batched x{args.batch}", args.batch)):
        cells = [Cell(args.task, m, d, args.policy, seeds, execution_horizon=args.execution_horizon, batch=batch)
                 for d in args.delays for m in args.modes]
        print(f"{label}: {len(cells)} cells x {args.episodes} episodes ...", flush=True)
        start = time.perf_counter()
        records = run_cells(cells, workers=1, done=lambda: print(".", end="", flush=True))
        seconds = time.perf_counter() - start
        episodes = sum(r["episodes"] for r in records)
        outcomes[label] = [r["outcomes"] for r in records]
        result[label] = {"seconds": round(seconds, 2), "episodes": episodes,
                         "episodes_per_s": round(episodes / seconds, 3),
                         "success": [round(r["success_rate"], 4) for r in records]}
        print(f"\n{label}: {episodes} episodes in {seconds:.1f} s = {episodes / seconds:.2f} episodes/s", flush=True)
    one, many = (result[k]["episodes_per_s"] for k in list(outcomes))
    result["speedup"] = round(many / one, 2)
    a, b = outcomes.values()
    result["same_outcomes"] = a == b
    result["differing_episodes"] = sum(x != y for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_eval.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| runner | episodes | seconds | episodes/s |", "|---|---|---|---|"]
    lines += [f"| {k} | {result[k]['episodes']} | {result[k]['seconds']} | {result[k]['episodes_per_s']} |"
              for k in outcomes]
    lines += ["", f"Speed-up {result['speedup']}x; outcomes identical: {result['same_outcomes']} "
                  f"({result['differing_episodes']} episodes differ)."]
    (out / "bench_eval.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
