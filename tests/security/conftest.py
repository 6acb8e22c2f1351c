"""The security tests use the fault tests' process fixture (always killed at teardown)."""

from tests.faults.conftest import procs  # noqa: F401 - a fixture
