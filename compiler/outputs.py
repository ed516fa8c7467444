"""Every file the tool writes goes through here: resolved paths, atomic commits, one error line.

* `resolve_output` turns a user's path into the real path the kernel would write, refusing
  symlink loops, paths through regular files and missing directories before anything is
  written (`victim/nosuch/..` names nothing, so it is not taken for `victim`).
* `write_bytes_atomic` writes a temporary file beside the target and renames it into place, so
  a reader never sees a half-written file and a failure (full disk, read-only directory,
  interrupt) leaves nothing behind. Files get the permissions of a plain `open()` under the
  user's umask (0644 under umask 022), not `mkstemp`'s private 0600.
* `deferred_signals` holds SIGINT/SIGTERM/SIGHUP while a commit (the rename and whatever
  reports it) runs: a run whose output was committed finishes and reports success instead of
  `error: interrupted`.

Any `OSError` becomes an `OutputError` naming the path and the system's reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from spatten_hls.compiler.errors import OutputError

DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TEMP_TAG = "spatten"  # temporaries are .NAME.spatten-PID-XXXX: the PID says who left them


@cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new file under the user's umask (what `open(path, "w")` gives)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Mode of a new directory under the user's umask (what `mkdir` gives)."""
    return 0o777 & ~_umask()


def describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def resolve_output(path: Path, create: bool = False) -> Path:
    """The real absolute path that writing `path` would create or replace.

    Every component but the last must exist and be a directory (after following symlinks),
    as for the kernel; the last may be missing. With `create`, missing directories are made
    (`mkdir -p`), all but a `..` right after one: that names nothing yet. `..` is applied to
    the real directory reached so far, so a symlink followed by `..` means what the kernel
    means.
    """
    path = Path(path)
    full = path if path.is_absolute() else Path.cwd() / path
    parts = full.parts
    current = Path(parts[0])
    for index, part in enumerate(parts[1:], start=1):
        last = index == len(parts) - 1
        if part == "..":
            current = current.parent
            continue
        step = current / part
        try:
            info = os.stat(step)
        except FileNotFoundError:
            if os.path.islink(step):
                raise OutputError(f"{path}: {step} is a dangling symbolic link") from None
            if create and parts[index + 1 : index + 2] != ("..",):
                _mkdir(path, step)
                current = step
                continue
            if last:
                return step
            raise OutputError(f"{path}: directory {step} does not exist") from None
        except OSError as exc:  # ELOOP, ENOTDIR, EACCES, ENAMETOOLONG
            raise OutputError(f"{path}: {describe(exc)}") from None
        if (create or not last) and not stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{path}: {step} is not a directory")
        current = Path(os.path.realpath(step))
    return current


def _mkdir(path: Path, step: Path) -> None:
    try:
        step.mkdir(mode=dir_mode())
    except FileExistsError:
        if not step.is_dir():
            raise OutputError(f"{path}: {step} exists and is not a directory") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot create directory {step}: {describe(exc)}") from None


def output_file(path: Path) -> Path:
    """The resolved target of a file output: absent, or an existing regular file."""
    target = resolve_output(path)
    if target.is_dir():
        raise OutputError(f"{path}: is a directory, expected a file path")
    if target.exists() and not target.is_file():
        raise OutputError(f"{path}: exists and is not a regular file; refusing to replace it")
    return target


def ensure_directory(path: Path) -> Path:
    """Create the directory `path` (and missing parents); return its real path."""
    return resolve_output(path, create=True)


def write_text_atomic(path: Path, text: str, then: Callable[[], None] | None = None) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), then)


def write_bytes_atomic(path: Path, data: bytes, then: Callable[[], None] | None = None) -> None:
    """Write `data` to `path` atomically; `then` runs with the commit (e.g. a message)."""
    target = output_file(path)
    remove_stale_temporaries(target.parent, f".{target.name}.{TEMP_TAG}-")
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.{TEMP_TAG}-{os.getpid()}-", suffix=".tmp", dir=target.parent
        )
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {describe(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), file_mode())
            handle.write(data)
        with deferred_signals():
            os.replace(tmp, target)
            if then is not None:
                then()
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write: {describe(exc)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(directory: Path, prefix: str) -> list[Path]:
    """Delete `prefix<PID>-*` files left in `directory` by runs that no longer live (a run
    killed before its rename); return them."""
    removed = []
    for entry in sorted(directory.glob(f"{prefix}*")):
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if (
            pid.isdigit()
            and not process_alive(int(pid))
            and entry.is_file()
            and not entry.is_symlink()
        ):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold termination signals for the duration of a commit.

    The handlers are swapped for a recorder (Python runs handlers in the main thread whichever
    thread the signal hit, so native worker threads cannot let one through). If the body
    completes, recorded signals are dropped: the work they would have stopped is done. If it
    fails, they are delivered with the original handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda number, frame: caught.append(number))
        for sig in DEFERRED_SIGNALS
    }
    try:
        yield
    except BaseException:
        _restore(previous)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)
        raise
    _restore(previous)


def _restore(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
