"""Markdown for the reports (eval, bench, results): tables, and templates filled with computed values.

A template is markdown with two constructs:

- ``{{name}}``: replaced by ``str(values[name])``;
- ``<!-- if name -->…<!-- else -->…<!-- end -->`` (``else`` optional, blocks may nest): the first
  branch when ``values[name]`` is truthy, else the second. A marker alone on its line takes the
  line with it.

A name missing from ``values`` is an error, so a template and its values cannot drift apart silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_MARKER_LINE = re.compile(r"^[ \t]*(<!-- (?:if \w+|else|end) -->)[ \t]*\n", re.MULTILINE)
_MARKER = re.compile(r"<!-- (?:if (\w+)|(else)|end) -->")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def table(head: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    """Lines of a markdown table (cells formatted with ``str``), followed by a blank line."""
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def percent(x: float | None) -> str:
    """A rate in [0, 1] as a whole percentage, ``–`` when missing."""
    return "–" if x is None else f"{100 * x:.0f}%"


def _value(values: Mapping[str, Any], name: str) -> Any:
    if name not in values:
        raise KeyError(f"template name {name!r} has no value")
    return values[name]


def _choose_blocks(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with each if-block replaced by its chosen branch; a name is read only where it is reached."""
    pieces: list[str] = []
    stack: list[tuple[bool, bool, bool]] = []  # per open block: (outer active, condition, in its else branch)
    active, pos = True, 0
    for m in _MARKER.finditer(text):
        if active:
            pieces.append(text[pos : m.start()])
        pos = m.end()
        name, is_else = m.group(1), m.group(2)
        if name:
            condition = bool(_value(values, name)) if active else False
            stack.append((active, condition, False))
            active = active and condition
        elif is_else:
            if not stack or stack[-1][2]:
                raise ValueError("template: <!-- else --> without an open <!-- if -->")
            outer, condition, _ = stack[-1]
            stack[-1] = (outer, condition, True)
            active = outer and not condition
        else:
            if not stack:
                raise ValueError("template: <!-- end --> without an open <!-- if -->")
            active = stack.pop()[0]
    if stack:
        raise ValueError("template: an <!-- if --> has no <!-- end -->")
    if active:
        pieces.append(text[pos:])
    return "".join(pieces)


def fill(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with its blocks chosen and its placeholders replaced (see the module docstring)."""
    text = _choose_blocks(_MARKER_LINE.sub(r"\1", template), values)
    return _PLACEHOLDER.sub(lambda m: str(_value(values, m.group(1))), text)
