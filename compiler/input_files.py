"""Reading the files a user hands in (configs, model files, text, inputs, projects).

They come from colleagues and the internet, so every read is bounded and every failure is one
error naming the file:

* only regular files are read: a FIFO, `/dev/zero` or a directory is refused before a byte is
  read (opened non-blocking, so a FIFO without a writer cannot hang the open);
* each kind of file has a size limit (`limits.FILE_LIMITS`), checked on the open file;
* JSON and TOML parsing turns the parsers' own limits (integers of thousands of digits,
  nesting thousands deep) into the same one-line errors as a syntax error.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from spatten_hls.compiler.errors import CompilerError, InputError
from spatten_hls.compiler.limits import FILE_LIMITS, format_bytes


def _limit(kind: str) -> int:
    return FILE_LIMITS[kind]


def check_regular_file(path: Path, kind: str, error: type[CompilerError] = InputError) -> int:
    """Size of the regular file `path` (for readers that open it themselves, e.g. mmap)."""
    fd = _open(path, kind, error)
    try:
        return _checked_size(fd, path, kind, error)
    finally:
        os.close(fd)


def read_bytes(path: Path, kind: str, error: type[CompilerError] = InputError) -> bytes:
    """The contents of the regular file `path`, at most `FILE_LIMITS[kind]` bytes."""
    fd = _open(path, kind, error)
    try:
        size = _checked_size(fd, path, kind, error)
        chunks, total = [], 0
        while True:  # the size can change under us: never read past the limit
            chunk = os.read(fd, min(1 << 20, size + 1 - total) or 1)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > _limit(kind):
                raise error(
                    f"{path}: larger than the {format_bytes(_limit(kind))} limit for a {kind}"
                )
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_text(path: Path, kind: str, error: type[CompilerError] = InputError) -> str:
    data = read_bytes(path, kind, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_json(text: str, source: str, error: type[CompilerError] = InputError) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise error(f"{source}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise error(f"{source}: invalid JSON: {exc}") from None


def parse_toml(text: str, source: str, error: type[CompilerError] = InputError) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{source}: invalid TOML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise error(f"{source}: invalid TOML: {exc}") from None


def _open(path: Path, kind: str, error: type[CompilerError]) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: no such {kind}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a {kind}") from None
    except OSError as exc:
        raise error(f"{path}: cannot open: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise error(f"{path}: {what}; expected a {kind}")
    os.set_blocking(fd, True)
    return fd


def _checked_size(fd: int, path: Path, kind: str, error: type[CompilerError]) -> int:
    size = os.fstat(fd).st_size
    if size > _limit(kind):
        raise error(
            f"{path}: {format_bytes(size)} is larger than the "
            f"{format_bytes(_limit(kind))} limit for a {kind}"
        )
    return size
