"""``vlash bench NAME``: real-time benchmarks, each in its own module, imported only when run.

A benchmark module exposes ``add_arguments(parser)`` and ``run(args) -> int``, like a
subcommand. Timings are reported, never asserted (see DESIGN.md, section 7).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "runtime": ("vlash.experiments.bench_runtime", "sync vs naive vs vlash in real time: lateness, stalls, reaction, quantization"),
    "transport": ("vlash.experiments.bench_transport", "bus round-trip latency between two processes on loopback"),
    "serve": ("vlash.experiments.bench_serve", "one inference process, 1..N robots: batched vs one call each, overhead beyond the model"),
    "fuzz": ("vlash.experiments.bench_fuzz", "fuzz the wire decoder and a live inference endpoint: no crash, no hang"),
    "eval": ("vlash.experiments.bench_eval", "virtual-time evaluation speed: one episode at a time vs batched lockstep"),
    "soak": ("vlash.experiments.bench_soak", "long real-time run: tick drift, missed ticks, memory growth, lateness"),
    "display": ("vlash.experiments.bench_display", "control-loop lateness with the live view (rerun) on vs off"),
}


DEFAULT = "runtime"


def main(argv: list[str]) -> int:
    """``vlash bench [NAME] [OPTIONS]``; NAME defaults to ``runtime``."""
    names = "\n".join(f"  {name:<10} {help_text}" for name, (_, help_text) in BENCHMARKS.items())
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: vlash bench [NAME] [OPTIONS]   (NAME defaults to {DEFAULT})\n\nbenchmarks:\n{names}\n\n"
              "vlash bench NAME --help shows a benchmark's options")
        return 0
    name = argv[0] if argv and not argv[0].startswith("-") else DEFAULT
    options = argv[1:] if argv and argv[0] == name else list(argv)
    if name not in BENCHMARKS:
        print(f"vlash bench: unknown benchmark {name!r}\nbenchmarks:\n{names}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[name][0])
    return int(module.run(benchmark_parser(name).parse_args(options)) or 0)


def benchmark_parser(name: str) -> argparse.ArgumentParser:
    """The argument parser of ``vlash bench NAME``."""
    from vlash.cli import HelpFormatter

    module_name, help_text = BENCHMARKS[name]
    parser = argparse.ArgumentParser(prog=f"vlash bench {name}", description=help_text, formatter_class=HelpFormatter)
    importlib.import_module(module_name).add_arguments(parser)
    return parser
