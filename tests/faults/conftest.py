"""Fixtures for the fault-injection tests: processes that are always killed at teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.procs import Procs


@pytest.fixture
def procs(tmp_path) -> Iterator[Procs]:
    group = Procs(tmp_path)
    try:
        yield group
    finally:
        group.close()
