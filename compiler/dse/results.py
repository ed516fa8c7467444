"""DIR/results.jsonl: one JSON object per evaluated point, appended as points finish.

    {"id": "3f2a...", "point": {"token_pruning.keep": 0.5}, "status": "ok" | "error",
     "metrics": {...}, "error": null | "...", "seconds": 1.93}

The file is the sweep's memory: a rerun skips every id already in it, so a sweep stopped by
Ctrl-C, a crash or a lost worker resumes where it stopped. Each record is written and flushed
whole; a crash can leave at most a last line without its newline, which the next run drops.
One sweep at a time writes a directory (an advisory lock on DIR/.lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from spatten_hls.compiler.errors import CompilerError, OutputError
from spatten_hls.compiler.outputs import describe, write_bytes_atomic

RESULTS = "results.jsonl"
LOCK = ".lock"
MAX_LINE = 1 << 20  # a record is a few hundred bytes; a longer line is not ours


def record_line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, allow_nan=False) + "\n"


class ResultStore:
    """The records of DIR/results.jsonl, read at open and appended to while the sweep runs."""

    def __init__(self, directory: Path):
        self.path = directory / RESULTS
        self.records: dict[str, dict[str, Any]] = {}
        self._file: IO[str] | None = None

    def load(self) -> int:
        """Read the existing records (dropping a torn last line); their number."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot read: {describe(exc)}") from None
        complete = data[: data.rfind(b"\n") + 1]  # a crash mid-write leaves a torn last line
        for number, line in enumerate(complete.splitlines(), start=1):
            record = _parse(line, f"{self.path}:{number}")
            self.records[record["id"]] = record
        if len(complete) != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(len(complete))
        return len(self.records)

    def __enter__(self) -> ResultStore:
        try:
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write: {describe(exc)}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def append(self, record: dict[str, Any]) -> None:
        assert self._file is not None, "append inside `with store:`"
        try:
            self._file.write(record_line(record))
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write: {describe(exc)}") from None
        self.records[record["id"]] = record

    def rewrite(self, order: list[str]) -> None:
        """The same records, those of `order` first in that order (the space's), then any
        others (of earlier sweeps into DIR) as they were: a finished sweep's file does not
        depend on which worker finished first."""
        first = [self.records[i] for i in order if i in self.records]
        rest = [r for i, r in self.records.items() if i not in set(order)]
        data = "".join(record_line(r) for r in first + rest).encode()
        write_bytes_atomic(self.path, data)


def _parse(line: bytes, where: str) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise CompilerError(f"{where}: a line of {len(line)} bytes is not a sweep record")
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        raise CompilerError(
            f"{where}: not a sweep record (invalid JSON); remove the line to resume"
        ) from None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("id"), str)
        or record.get("status") not in ("ok", "error")
        or not isinstance(record.get("point"), dict)
    ):
        raise CompilerError(f"{where}: not a sweep record (needs id, point and status)")
    return record


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold DIR/.lock for the sweep: a second sweep into DIR is refused, not interleaved."""
    path = directory / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise OutputError(f"{path}: cannot open: {describe(exc)}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"{directory}: another sweep is writing this directory") from None
        yield
    finally:
        os.close(fd)
