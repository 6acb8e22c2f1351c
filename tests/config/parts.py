"""Parts that fail on purpose, named in launch files by ``module:callable`` path."""

from __future__ import annotations

from pathlib import Path

from tests.runtime.toy_driver import ToyDriver
from vlash.contracts import DriverReading


class CountingDriver(ToyDriver):
    """The toy arm, writing each ``connect``/``disconnect`` as a line of ``record`` (it may run in a child).

    ``fail_after_reads``: ``read`` raises once it has been called that many times.
    """

    def __init__(self, record: str, fail_after_reads: int | None = None) -> None:
        super().__init__()
        self.record = Path(record)
        self.fail_after_reads = fail_after_reads
        self.reads = 0

    def _note(self, event: str) -> None:
        with open(self.record, "a", encoding="utf-8") as f:
            f.write(event + "\n")

    def connect(self) -> None:
        super().connect()
        self._note("connect")

    def read(self) -> DriverReading:
        if self.fail_after_reads is not None and self.reads >= self.fail_after_reads:
            raise RuntimeError(f"the counting driver fails on purpose after {self.reads} reads")
        self.reads += 1
        return super().read()

    def disconnect(self) -> None:
        super().disconnect()
        self._note("disconnect")


def events(record: Path) -> list[str]:
    return record.read_text().split() if record.exists() else []


class BrokenPolicy:
    """A policy whose factory accepts its arguments and then fails when the server builds it."""

    def __init__(self, chunk_size: int = 8) -> None:
        raise ValueError(f"BrokenPolicy(chunk_size={chunk_size}) fails on purpose")
