"""The build cache of the C-simulation toolchain: one build per distinct set of inputs.

The compiler is replaced by a stub that writes its output file, so that these tests count
builds without running g++.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spatten_hls.compiler.codegen import csim, toolchain


@pytest.fixture
def builds(monkeypatch) -> list[list[str]]:
    seen: list[list[str]] = []

    def fake_compiler(command: list[str], what: str) -> None:
        seen.append(command)
        Path(command[command.index("-o") + 1]).write_bytes(b"built")

    monkeypatch.setattr(toolchain, "run_compiler", fake_compiler)
    monkeypatch.setattr(csim, "run_compiler", fake_compiler)
    return seen


def sources(root: Path) -> tuple[list[Path], list[Path]]:
    (root / "inc").mkdir(parents=True, exist_ok=True)
    (root / "main.cpp").write_text('#include "a.h"\nint main() { return A; }\n')
    (root / "inc" / "a.h").write_text("#define A 0\n")
    return [root / "main.cpp"], [root / "inc"]


def test_identical_inputs_build_once_and_any_change_builds_again(tmp_path, builds) -> None:
    src, inc = sources(tmp_path / "one")
    cache = tmp_path / "cache"
    first = toolchain.build_cached(src, inc, cache, "tb")
    copy_src, copy_inc = sources(tmp_path / "two")  # same bytes, another directory
    assert toolchain.build_cached(copy_src, copy_inc, cache, "tb") == first
    assert len(builds) == 1 and first.read_bytes() == b"built"
    (tmp_path / "two" / "inc" / "a.h").write_text("#define A 1\n")  # a header changed
    changed = toolchain.build_cached(copy_src, copy_inc, cache, "tb")
    assert changed != first and len(builds) == 2
    assert toolchain.build_cached(src, inc, cache, "tb", shared=True).suffix == ".so"
    assert len(builds) == 3


def test_prune_keeps_the_most_recently_used(tmp_path) -> None:
    for i in range(5):
        path = tmp_path / f"tb-{i}"
        path.write_bytes(b"x")
        os.utime(path, (1000 + i, 1000 + i))
    toolchain.prune_cache(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tb-3", "tb-4"]


def test_cache_location_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SPATTEN_CACHE_DIR", str(tmp_path / "explicit"))
    assert toolchain.user_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SPATTEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert toolchain.user_cache_dir() == tmp_path / "xdg" / "spatten-hls"


def test_an_unwritable_cache_builds_for_the_run_only(monkeypatch, tmp_path, builds) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("SPATTEN_CACHE_DIR", str(blocker))
    src, inc = sources(tmp_path / "p")
    with csim._testbench(tmp_path / "p", src, inc) as binary:
        assert binary.read_bytes() == b"built" and not binary.is_relative_to(blocker)
    assert not binary.exists() and len(builds) == 1
