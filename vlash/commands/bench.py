"""``vlash bench NAME``: real-time benchmarks, each in its own module, imported only when run.

A benchmark module exposes ``add_arguments(parser)`` and ``run(args) -> int``, like a
subcommand. Timings are reported, never asserted (see DESIGN.md, section 7).
"""

from __future__ import annotations

import argparse
import importlib

# name -> (module, one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "runtime": ("vlash.bench_runtime", "sync vs naive vs vlash in real time: lateness, stalls, reaction, quantization"),
    "transport": ("vlash.bench_transport", "bus round-trip latency between two processes on loopback"),
}


DEFAULT = "runtime"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = "; ".join(f"{name}: {help_text}" for name, (_, help_text) in BENCHMARKS.items())
    parser.add_argument(
        "options",
        nargs=argparse.REMAINDER,
        help=f"[NAME] then the benchmark's own options (vlash bench NAME --help). NAME defaults to "
        f"{DEFAULT!r}. Benchmarks: {names}",
    )


def run(args: argparse.Namespace) -> int:
    options = list(args.options)
    name = options.pop(0) if options and options[0] in BENCHMARKS else DEFAULT
    if options and not options[0].startswith("-"):
        raise SystemExit(f"vlash bench: unknown benchmark {options[0]!r}; known: {', '.join(sorted(BENCHMARKS))}")
    args.benchmark = name
    args.options = options
    module_name, help_text = BENCHMARKS[args.benchmark]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"vlash bench {args.benchmark}", description=help_text)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(args.options)) or 0)
