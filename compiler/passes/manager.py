"""Runs an explicit pipeline of passes with checks and optional IR dumps.

Before anything runs, the whole pipeline's requires/provides chain is checked. The graph is
verified before the first pass and after each one. Each pass gets a private copy, so the
caller's graph never changes. An error inside a pass is re-raised as `PassError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import CompilerError, PassError
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.printer import print_ir
from spatten_hls.compiler.ir.verify import verify
from spatten_hls.compiler.outputs import ensure_directory, write_text_atomic
from spatten_hls.compiler.passes.registry import PASSES, PassInfo


def resolve_pipeline(names: Sequence[str], initial: frozenset[str]) -> list[PassInfo]:
    """Look the passes up and check that each one's requirements are met by what precedes it."""
    infos, have, seen = [], set(initial), set()
    for name in names:
        if name not in PASSES:
            raise CompilerError(f"unknown pass '{name}' (known: {', '.join(PASSES)})")
        if name in seen:
            raise CompilerError(f"pass '{name}' appears twice in the pipeline")
        info = PASSES[name]
        missing = info.requires - have
        if missing:
            raise CompilerError(
                f"pass '{name}' requires {', '.join(sorted(missing))}, which no earlier pass "
                f"provides (pipeline: {', '.join(names)})"
            )
        infos.append(info)
        have |= info.provides
        seen.add(name)
    return infos


def run_pipeline(
    g: AttnGraph,
    cfg: Config,
    names: Sequence[str],
    dump_dir: Path | None = None,
    check: bool = True,
) -> AttnGraph:
    infos = resolve_pipeline(names, g.properties)
    if check:
        verify(g)
    if dump_dir is not None:
        dump_dir = ensure_directory(dump_dir)
        write_text_atomic(dump_dir / "00-input.ir.txt", print_ir(g))
    ran: list[str] = []
    for index, info in enumerate(infos, start=1):
        g = _run_one(info, g, cfg, ran, check)
        ran.append(info.name)
        if dump_dir is not None:
            write_text_atomic(dump_dir / f"{index:02d}-{info.name}.ir.txt", print_ir(g))
    return g


def _run_one(info: PassInfo, g: AttnGraph, cfg: Config, ran: list[str], check: bool) -> AttnGraph:
    work = g.copy()
    try:
        result = info.fn(work, cfg)
        result.properties = result.properties | info.provides
        if check:
            verify(result)
    except Exception as exc:  # bugs included: the user sees which pass failed
        raise PassError(info.name, ran, exc) from exc
    return result
