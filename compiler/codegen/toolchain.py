"""g++ toolchain for C-simulation: ap_types headers, strict flags, cached builds.

A build is keyed by the bytes of its sources and of every header in its include directories,
the compiler, its flags and the ap_types directory (and its headers' sizes and times): a
second build of the same project (a rerun of `spatten csim`, new golden data) reuses the
first. The testbench binaries live in
`$SPATTEN_CACHE_DIR` (default `$XDG_CACHE_HOME/spatten-hls`, else `~/.cache/spatten-hls`),
the newest CACHE_KEEP of them.

Headers come from `$XILINX_HLS/include` when set (a real Vitis install), else from the
Apache-2.0 ap_types shipped inside hls4ml (`pip install --no-deps hls4ml==1.3.0`; located
without importing hls4ml, whose dependencies a --no-deps install lacks).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from spatten_hls.compiler.errors import CodegenError

CXX = os.environ.get("CXX", "g++")
# The strict set of CSIM.md: c++20 (UBSan-clean on the headers), warnings as errors.
CXXFLAGS = (
    "-std=c++20",
    "-O1",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unknown-pragmas",
    "-Wno-maybe-uninitialized",
    "-Wno-uninitialized",
    "-Wno-unused-label",
)  # HLS names loops with labels
HLS4ML_HEADERS = "hls4ml==1.3.0"


def ap_types_include() -> Path:
    xilinx = os.environ.get("XILINX_HLS")
    if xilinx:
        path = Path(xilinx) / "include"
        if (path / "ap_int.h").is_file():
            return path
        raise CodegenError(f"XILINX_HLS={xilinx}: no ap_int.h in {path}")
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or spec.origin is None:
        raise CodegenError(
            "no ap_types headers: set XILINX_HLS to a Vitis HLS install or run "
            f"'pip install --no-deps {HLS4ML_HEADERS}'"
        )
    path = Path(spec.origin).parent / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise CodegenError(
            f"hls4ml at {path.parent} has no ap_types headers; install {HLS4ML_HEADERS}"
        )
    return path


def compiler_command(
    sources: Sequence[Path], include_dirs: Sequence[Path], output: Path, shared: bool = False
) -> list[str]:
    command = [CXX, *CXXFLAGS, "-isystem", str(ap_types_include())]
    for directory in include_dirs:
        command += ["-I", str(directory)]
    if shared:
        command += ["-fPIC", "-shared", "-fno-gnu-unique"]
    return [*command, *(str(s) for s in sources), "-o", str(output)]


def run_compiler(command: list[str], what: str) -> None:
    if shutil.which(command[0]) is None:
        raise CodegenError(f"C++ compiler '{command[0]}' not found (set CXX)")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        first = next((ln for ln in lines if "error" in ln), lines[0] if lines else "?")
        raise CodegenError(f"g++ failed building {what}: {first}")


CACHE_KEEP = 32  # testbench binaries kept in the user cache (the newest)


def user_cache_dir() -> Path:
    """Where builds outlive a run: $SPATTEN_CACHE_DIR, else the XDG cache directory."""
    explicit = os.environ.get("SPATTEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spatten-hls"


def build_cached(
    sources: Sequence[Path],
    include_dirs: Sequence[Path],
    cache_dir: Path,
    name: str,
    shared: bool = False,
) -> Path:
    """Compile `sources` into a shared library or an executable in `cache_dir`, reusing a
    build of identical inputs (see the module docstring)."""
    headers = sorted((p for d in include_dirs for p in Path(d).rglob("*.h")), key=str)
    digest = hashlib.sha256()
    for path in [*sources, *headers]:
        digest.update(str(path.name).encode())
        digest.update(Path(path).read_bytes())
    ap_types = ap_types_include()
    digest.update(" ".join([CXX, *CXXFLAGS, str(ap_types), str(shared)]).encode())
    for header in sorted(ap_types.iterdir()):  # an updated install in the same place
        stamp = header.stat()
        digest.update(f"{header.name} {stamp.st_size} {stamp.st_mtime_ns}".encode())
    built = cache_dir / f"{name}-{digest.hexdigest()[:16]}{'.so' if shared else ''}"
    if built.is_file():
        os.utime(built)  # recently used: kept by prune_cache
        return built
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        partial = Path(tmp) / built.name
        run_compiler(compiler_command(sources, include_dirs, partial, shared=shared), name)
        os.replace(partial, built)  # atomic: a concurrent build of the same inputs is alike
    return built


def prune_cache(cache_dir: Path, keep: int = CACHE_KEEP) -> None:
    """Delete all but the `keep` most recently used builds in `cache_dir` (another process
    may prune the same directory at once: a build already gone is skipped)."""
    used = []
    for path in cache_dir.glob("*"):
        try:
            if path.is_file():
                used.append((path.stat().st_mtime_ns, path))
        except FileNotFoundError:
            continue
    for _, stale in sorted(used, reverse=True)[keep:]:
        stale.unlink(missing_ok=True)
