"""Markdown tables for the reports (eval, bench, results)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def table(head: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    """Lines of a markdown table (cells formatted with ``str``), followed by a blank line."""
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]
