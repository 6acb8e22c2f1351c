"""The run folder: append-only JSON-lines logs, a summary and (later) plots.

``ticks.jsonl`` gets one line per control tick and ``chunks.jsonl`` one per installed chunk.
Lines are buffered and flushed every ``flush_every`` records, so a SIGKILL loses at most the
last buffer; :meth:`RunLog.close` flushes everything (called on SIGINT/SIGTERM too).
No pickle: everything is JSON.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [round(float(x), 6) for x in value.ravel()]
    if isinstance(value, np.floating | float):
        return None if not math.isfinite(float(value)) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def plain(value: Any) -> Any:
    """``value`` as strict JSON data, recursively (numpy to Python, non-finite floats to None)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return _jsonable(value)


class JsonLines:
    """An append-only JSON-lines file with a bounded write buffer."""

    def __init__(self, path: Path, flush_every: int = 32):
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._buffer: list[str] = []
        self.flush_every = flush_every
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        self._buffer.append(json.dumps({k: _jsonable(v) for k, v in record.items()}, separators=(",", ":")))
        self.count += 1
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if self._buffer and not self._file.closed:
            self._file.write("\n".join(self._buffer) + "\n")
            self._file.flush()
            self._buffer.clear()

    def close(self) -> None:
        self.flush()
        if not self._file.closed:
            os.fsync(self._file.fileno())
            self._file.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a JSON-lines file (a torn last line after a crash is skipped)."""
    out = []
    if not Path(path).exists():
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return out


class RunLog:
    """One run folder: ``ticks.jsonl``, ``chunks.jsonl``, ``summary.json``."""

    def __init__(self, folder: str | Path, flush_every: int = 32):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ticks = JsonLines(self.folder / "ticks.jsonl", flush_every)
        self.chunks = JsonLines(self.folder / "chunks.jsonl", max(1, flush_every // 8))

    def flush(self) -> None:
        self.ticks.flush()
        self.chunks.flush()

    def close(self, summary: dict[str, Any] | None = None) -> None:
        self.ticks.close()
        self.chunks.close()
        if summary is not None:
            write_json(self.folder / "summary.json", summary)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temp file, then rename)."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def percentile(values, q: float) -> float | None:
    """The q-th percentile, or None for no values."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    return round(float(np.percentile(arr, q)), 4) if arr.size else None
