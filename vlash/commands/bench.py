"""``vlash bench NAME``: real-time benchmarks, each in its own module, imported only when run.

A benchmark module exposes ``add_arguments(parser)`` and ``run(args) -> int``, like a
subcommand. Timings are reported, never asserted (see DESIGN.md, section 7).
"""

from __future__ import annotations

import argparse
import importlib

# name -> (module, one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "transport": ("vlash.bench_transport", "bus round-trip latency between two processes on loopback"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = "; ".join(f"{name}: {help_text}" for name, (_, help_text) in BENCHMARKS.items())
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS), help=f"which benchmark ({names})")
    parser.add_argument(
        "options", nargs=argparse.REMAINDER, help="the benchmark's own options (vlash bench NAME --help)"
    )


def run(args: argparse.Namespace) -> int:
    module_name, help_text = BENCHMARKS[args.benchmark]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"vlash bench {args.benchmark}", description=help_text)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(args.options)) or 0)
