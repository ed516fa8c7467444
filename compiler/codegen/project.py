"""Emission of the Vitis HLS project directory (atomic: a temp dir renamed into place).

Layout: src/ (top, params.h, engines/), tb/ (testbench, host schedule, data/ golden vectors),
run_hls.tcl, hls_config.cfg, Makefile, README.md, config.toml, ir/ (the final IR).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from spatten_hls.compiler.codegen.env import render
from spatten_hls.compiler.codegen.lower import ProjectContext, project_context
from spatten_hls.compiler.codegen.tables import tables_header
from spatten_hls.compiler.codegen.toolchain import CXXFLAGS
from spatten_hls.compiler.codegen.vectors import golden_vectors
from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import CodegenError
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.printer import print_ir
from spatten_hls.compiler.ir.serialize import to_json
from spatten_hls.compiler.perf.report import performance_report
from spatten_hls.compiler.resources import templates_dir

SOURCES = ("spatten_top.cpp",)
INTERFACE_BUNDLES = (("q", "gmem_q"), ("k_msb", "gmem_k_msb"), ("k_lsb", "gmem_k_lsb"),
                     ("v", "gmem_v"), ("out", "gmem_out"), ("token_dropped_at", "gmem_state"),
                     ("token_importance", "gmem_state"), ("head_dropped_at", "gmem_state"),
                     ("head_importance", "gmem_state"), ("mult", "gmem_params"),
                     ("shift", "gmem_params"), ("v_weight", "gmem_params"),
                     ("requants", "gmem_params"), ("topk_cycles", "gmem_params"))
SCALARS = ("layer", "q_begin", "q_end", "end", "step_query")


def project_files(g: AttnGraph, cfg: Config, seed: int = 0) -> dict[str, bytes]:
    """Every file of the project, by relative path (deterministic bytes)."""
    ctx = project_context(g, cfg)
    q = cfg.quantization
    bits = {"q": q.q_bits, "k": q.k_bits, "v": q.v_bits}
    if ctx.progressive:
        bits["k_lsb"] = q.k_lsb_bits
    vectors = golden_vectors(g, bits, q.k_lsb_bits, seed=seed,
                             topk_parallelism=cfg.hardware.topk_parallelism)
    estimate = performance_report(vectors.result, cfg).to_text()
    common = {"ctx": ctx, "sources": SOURCES}
    text = {
        "src/spatten_top.cpp": render("top.cpp.j2", ports=_ports(ctx), scalars=SCALARS, **common),
        "src/spatten_top.h": render("top.h.j2", **common),
        "src/params.h": render("params.h.j2", **common),
        "src/engines/spatten_tables.h": tables_header(),
        "tb/tb_spatten_top.cpp": render("tb.cpp.j2", **common),
        "tb/host_params.h": render("host_params.h.j2", **common),
        "run_hls.tcl": render("run_hls.tcl.j2", **common),
        "hls_config.cfg": render("hls_config.cfg.j2", **common),
        "Makefile": render("Makefile.j2", cxxflags=" ".join(CXXFLAGS), **common),
        "README.md": render("README.md.j2", estimate=estimate, **common),
        "config.toml": ctx.config_toml,
        "ir/final.ir.txt": print_ir(g),
        "ir/final.ir.json": to_json(g),
    }
    files = {path: content.encode("utf-8") for path, content in text.items()}
    hls = templates_dir() / "hls"
    for engine in sorted((hls / "engines").glob("*.h")):
        files[f"src/engines/{engine.name}"] = engine.read_bytes()
    for name in ("host.h", "ctypes_api.cpp"):
        files[f"tb/{name}"] = (hls / "tb" / name).read_bytes()
    for name, data in vectors.files().items():
        files[f"tb/data/{name}"] = data
    return files


def _ports(ctx: ProjectContext) -> list[dict[str, object]]:
    q_words = ctx.num_heads * ctx.max_ctx * ctx.head_dim
    kv_words = ctx.num_kv_heads * ctx.max_ctx * ctx.head_dim
    depth = {"q": q_words, "out": q_words, "k_msb": kv_words, "k_lsb": kv_words, "v": kv_words,
             "token_dropped_at": ctx.max_ctx, "token_importance": ctx.max_ctx,
             "head_dropped_at": ctx.num_heads, "head_importance": ctx.num_heads,
             "mult": ctx.num_heads, "shift": ctx.num_heads, "v_weight": ctx.num_heads,
             "requants": 1, "topk_cycles": 1}
    return [{"name": name, "bundle": bundle, "depth": depth[name]}
            for name, bundle in INTERFACE_BUNDLES]


def write_project(files: dict[str, bytes], out_dir: Path, force: bool) -> None:
    """Write atomically: nothing appears at `out_dir` unless everything was written.

    A new directory is staged beside `out_dir` and renamed into place. An existing one (empty,
    or replaced with --force) keeps its inode, as it may be the working directory (`-o .`) or
    a mount point, neither of which can be renamed: the project is staged inside it and the
    entries are swapped.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CodegenError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise CodegenError(f"{out_dir}: directory is not empty (use --force to replace it)")
    target = out_dir.resolve()  # `-o .` has no name of its own
    if not target.parent.is_dir():
        raise CodegenError(f"{out_dir}: parent directory {target.parent} does not exist")
    existing = target.is_dir()
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.",
                                        dir=target if existing else target.parent))
    except OSError as exc:
        raise CodegenError(f"{out_dir}: cannot write the project: {exc}") from None
    try:
        for relative, data in sorted(files.items()):
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if existing:
            _replace_contents(target, staging)
        else:
            os.replace(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise CodegenError(f"{out_dir}: cannot write the project: {exc}") from None
        raise


def _replace_contents(target: Path, staging: Path) -> None:
    """Swap `target`'s entries for those of `staging` (a directory inside it)."""
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target))
    for entry in sorted(target.iterdir()):
        if entry not in (staging, old):
            os.replace(entry, old / entry.name)
    for entry in sorted(staging.iterdir()):
        os.replace(entry, target / entry.name)
    staging.rmdir()
    shutil.rmtree(old, ignore_errors=True)
