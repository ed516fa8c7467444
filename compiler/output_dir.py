"""Write a whole directory tree so that DIR always holds either the old tree or the new one.

The new tree is staged in a hidden sibling, `.DIR.spatten-new-PID-XXXX`, then committed:

* DIR absent: one `rename` puts the staging directory in its place.
* DIR present (empty, or replaced with --force): `renameat2(RENAME_EXCHANGE)` swaps the two
  in one step on Linux; the old tree, now under the staging name, is deleted afterwards.
  Where the exchange is unsupported, DIR is first renamed to `.DIR.spatten-old-PID-XXXX`;
  between that rename and the next, DIR is briefly absent (its contents are in that sibling).
* DIR is the working directory (or contains it) or a mount point: it cannot be renamed. An
  empty one is filled in place; replacing a non-empty one is refused, since no single step
  can swap its contents.

SIGKILL can stop a run at any point. Whatever it leaves is named by its PID: the next run
deletes temporaries of dead runs, and names an old tree it cannot place back (DIR missing).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from spatten_hls.compiler.errors import OutputError
from spatten_hls.compiler.outputs import (
    deferred_signals,
    describe,
    dir_mode,
    file_mode,
    process_alive,
    resolve_output,
)

NEW, OLD = "spatten-new", "spatten-old"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def write_tree(
    files: Mapping[str, bytes], out_dir: Path, force: bool, then: Callable[[], None] | None = None
) -> list[str]:
    """Write `files` (relative path -> bytes) as the directory `out_dir`.

    Returns notes about temporaries of interrupted earlier runs that were removed or found.
    `then` runs inside the commit (signals held), e.g. to print that the tree was written.
    """
    out_dir = Path(out_dir)
    target = resolve_output(out_dir)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a directory")
    notes = _clean_stale(target)
    existing = target.is_dir()
    in_place = existing and _cannot_rename(target)
    if existing and _entries(target) and not force:
        raise OutputError(f"{out_dir}: directory is not empty (use --force to replace it)")
    if in_place and _entries(target):
        raise OutputError(
            f"{out_dir}: cannot replace the current directory or a mount point "
            f"in one step; run from its parent with -o {target.name} --force, "
            f"or empty it"
        )
    home = target if in_place else target.parent
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{NEW}-{os.getpid()}-", dir=home))
        os.chmod(staging, dir_mode())
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write the project: {describe(exc)}") from None
    try:
        _fill(staging, files)
        with deferred_signals():
            if not existing:
                os.rename(staging, target)
            elif in_place:
                for entry in sorted(staging.iterdir()):
                    os.rename(entry, target / entry.name)
                staging.rmdir()
            else:
                _swap(target, staging)
            if then is not None:
                then()
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{out_dir}: cannot write the project: {describe(exc)}") from None
        raise
    return notes


def _fill(staging: Path, files: Mapping[str, bytes]) -> None:
    mode = file_mode()
    for relative, data in sorted(files.items()):
        path = staging / relative
        for parent in reversed(path.relative_to(staging).parents[:-1]):
            (staging / parent).mkdir(mode=dir_mode(), exist_ok=True)
        with open(path, "xb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)


def _swap(target: Path, staging: Path) -> None:
    """Put `staging` at `target`; the old tree ends up deleted."""
    try:
        _exchange(staging, target)
        old = staging
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
            raise
        old = target.parent / f".{target.name}.{OLD}-{os.getpid()}-{staging.name[-8:]}"
        os.rename(target, old)
        os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> None:
    """Atomically exchange two paths (Linux renameat2 with RENAME_EXCHANGE)."""
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, "renameat2 is Linux-only")
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "no renameat2 in the C library")
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _cannot_rename(target: Path) -> bool:
    """The working directory (or a directory above it) and mount points keep their place."""
    cwd = Path.cwd().resolve()
    return cwd == target or target in cwd.parents or os.path.ismount(target)


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def _clean_stale(target: Path) -> list[str]:
    """Remove what interrupted runs left for `target`; name what cannot be put back."""
    notes: list[str] = []
    places = [target.parent, target] if target.is_dir() else [target.parent]
    for entry in sorted(e for place in places for e in place.glob(f".{target.name}.spatten-*")):
        pid = _pid_of(entry.name)
        if pid is None or process_alive(pid) or entry.is_symlink() or not entry.is_dir():
            continue
        if OLD in entry.name and not target.exists():
            notes.append(
                f"{target} is missing; an interrupted run left its previous "
                f"contents in {entry}: move that back or delete it"
            )
            continue
        shutil.rmtree(entry, ignore_errors=True)
        notes.append(f"removed {entry}, left by an interrupted run")
    return notes


def _pid_of(name: str) -> int | None:
    for kind in (NEW, OLD):
        _, found, rest = name.partition(f".{kind}-")
        if found:
            pid = rest.split("-", 1)[0]
            return int(pid) if pid.isdigit() else None
    return None
