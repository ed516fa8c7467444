"""Atomic file output: a reader never sees a half-written file, a failure leaves nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from spatten_hls.compiler.errors import CompilerError


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    if path.is_dir():
        raise CompilerError(f"{path}: is a directory, expected a file path")
    if not path.parent.is_dir():
        raise CompilerError(f"{path}: parent directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
