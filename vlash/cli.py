"""The ``vlash`` command. Each subcommand lives in its own module, imported only when used.

A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``, or
``main(argv) -> int`` when it parses its own arguments.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from vlash import __version__

# name -> (module, one-line help). Keep in the order a user meets them.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vlash.commands.demo", "run the sim in sync and vlash mode and compare them"),
    "launch": ("vlash.commands.launch", "start the processes a launch file names"),
    "serve": ("vlash.commands.serve", "run the inference process"),
    "control": ("vlash.commands.control", "run the control process"),
    "eval": ("vlash.commands.eval", "virtual-time evaluation: modes x delays x tasks"),
    "bench": ("vlash.commands.bench", "real-time benchmarks (transport, runtime, soak)"),
    "record": ("vlash.commands.record", "record scripted demonstrations to a LeRobot dataset"),
    "train": ("vlash.commands.train", "train a LeRobot policy with temporal-delay augmentation"),
    "keys": ("vlash.commands.keys", "create a CurveZMQ key pair"),
    "study": ("vlash.commands.study", "the powered accuracy study (docs/STUDY_PLAN.md; hours)"),
    "results": ("vlash.commands.results", "regenerate docs/RESULTS.md"),
}


def shown(value: object) -> str:
    """A default as a user types it: lists comma-joined, the rest as text."""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def help_text(action: argparse.Action) -> str:
    """An option's help as ``--help`` prints it: its text, then its default unless the text already says it
    (flags, None and empty defaults have none to show), then its choices when a metavar hides them."""
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return text
    default = action.default
    if (action.option_strings and "default" not in text.lower() and action.nargs != 0
            and default not in (None, "", [], (), argparse.SUPPRESS)):
        text += f" (default: {shown(default).replace('%', '%%')})"
    if action.choices and action.metavar is not None and "choices" not in text:
        text += f" (choices: {', '.join(str(c) for c in action.choices)})".replace("%", "%%")
    return text


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` of every vlash command: each option with its default and choices (:func:`help_text`)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return help_text(action)


def command_parser(name: str) -> argparse.ArgumentParser:
    """The argument parser of ``vlash NAME`` (a command with ``add_arguments``)."""
    module_name, help_text_ = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"vlash {name}", description=help_text_, formatter_class=HelpFormatter)
    importlib.import_module(module_name).add_arguments(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlash", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vlash {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # handles --version, --help and unknown commands
        parser.print_help()
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"vlash {name}: not available in this build ({exc})", file=sys.stderr)
            return 2
        raise
    try:
        if hasattr(module, "main"):  # a command that parses its own arguments (e.g. bench NAME ...)
            return int(module.main(rest) or 0)
        return int(module.run(command_parser(name).parse_args(rest)) or 0)
    except KeyboardInterrupt:
        print(f"vlash {name}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as exc:  # bad input: one clear line, not a traceback
        if os.environ.get("VLASH_DEBUG"):
            raise
        print(f"vlash {name}: error: {exc} (VLASH_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
