"""The files of the Vitis HLS project directory (written by `output_dir.write_tree`).

Layout: src/ (top, params.h, engines/), tb/ (testbench, host schedule, data/ golden vectors),
run_hls.tcl, hls_config.cfg, Makefile, README.md, config.toml, ir/ (the final IR).
"""

from __future__ import annotations

from spatten_hls.compiler.codegen.connectivity import (
    VITIS_VERSIONS,
    hbm_connections,
    hbm_platform,
)
from spatten_hls.compiler.codegen.cosim_run import cosim_extent, describe
from spatten_hls.compiler.codegen.env import render
from spatten_hls.compiler.codegen.lower import ProjectContext, project_context
from spatten_hls.compiler.codegen.tables import tables_header
from spatten_hls.compiler.codegen.toolchain import CXXFLAGS
from spatten_hls.compiler.codegen.vectors import golden_vectors
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.printer import print_ir
from spatten_hls.compiler.ir.serialize import to_json
from spatten_hls.compiler.perf.report import performance_report
from spatten_hls.compiler.resources import templates_dir
from spatten_hls.compiler.sim import RunExtent, simulate

SOURCES = ("spatten_top.cpp",)
# m_axi ports besides the K / V read lanes (k<i>, v<i>: one bundle, an HBM pseudo-channel,
# each): the port and its bundle.
INTERFACE_BUNDLES = (
    ("q", "gmem_q"),
    ("out", "gmem_out"),
    ("token_dropped_at", "gmem_state"),
    ("token_importance", "gmem_state"),
    ("head_dropped_at", "gmem_state"),
    ("head_importance", "gmem_state"),
    ("mult", "gmem_params"),
    ("shift", "gmem_params"),
    ("v_weight", "gmem_params"),
    ("requants", "gmem_params"),
)
SCALARS = ("layer", "q_begin", "q_end", "end", "step_query", "control")
# The Vitis releases each generated flow file was written for.
FLOW_VERSIONS = {
    "unified": "Vitis 2024.2 to 2025.1",
    "classic": "Vitis HLS 2023.2 to 2024.2",
    "link": VITIS_VERSIONS,
}


def project_files(
    g: AttnGraph, config_toml: str, config_name: str, seed: int = 0, cosim_size: bool = False
) -> dict[str, bytes]:
    """Every file of the project, by relative path (deterministic bytes).

    Everything comes from the lowered IR and its plan; `config_toml` (the settings as TOML)
    is only recorded in the project, and `config_name` labels the performance estimate.
    `cosim_size`: the golden vectors cover the reduced run of cosim_run.py instead of the
    whole stage (the design and the performance estimate stay the whole stage's).
    """
    ctx = project_context(g)
    plan, whole_extent = g.lowered_plan(), RunExtent.full(g.info)
    extent = cosim_extent(ctx) if cosim_size else whole_extent
    vectors = golden_vectors(g, seed=seed, extent=extent)
    whole = simulate(g, seed=seed, reference=False) if cosim_size else vectors.result
    report = performance_report(whole, plan, config_name)
    golden_run = {
        "words": describe(extent, ctx.stage),
        "reduced": cosim_size,
        "invocations": extent.layers * extent.steps,
        "cycles": round(performance_report(vectors.result, plan).latency_cycles),
        "whole_invocations": whole_extent.layers * whole_extent.steps,
        "whole_cycles": round(report.latency_cycles),
    }
    common = {"ctx": ctx, "sources": SOURCES, "versions": FLOW_VERSIONS, "golden_run": golden_run}
    ports = _ports(ctx)
    text = {
        "src/spatten_top.cpp": render("top.cpp.j2", ports=ports, scalars=SCALARS, **common),
        "src/spatten_top.h": render("top.h.j2", **common),
        "src/params.h": render("params.h.j2", **common),
        "src/engines/spatten_tables.h": tables_header(),
        "tb/tb_spatten_top.cpp": render("tb.cpp.j2", **common),
        "tb/host_params.h": render("host_params.h.j2", **common),
        "run_hls.tcl": render("run_hls.tcl.j2", **common),
        "hls_config.cfg": render("hls_config.cfg.j2", **common),
        "Makefile": render("Makefile.j2", cxxflags=" ".join(CXXFLAGS), **common),
        "link.cfg": _link_config(ctx, ports, common),
        "README.md": render("README.md.j2", estimate=report.to_text(), **common),
        "config.toml": config_toml,
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


def _link_config(ctx: ProjectContext, ports: list[dict[str, object]], common: dict) -> str:
    connections, shared = hbm_connections(ports, ctx.hbm_channels)
    return render(
        "link.cfg.j2",
        connections=connections,
        shared=shared,
        channels=ctx.hbm_channels,
        bundles=len({c.bundle for c in connections}),
        freq_hz=round(ctx.clock_mhz * 1e6),
        platform=hbm_platform(ctx.part),
        **{**common, "versions": FLOW_VERSIONS["link"]},
    )


def _ports(ctx: ProjectContext) -> list[dict[str, object]]:
    """Every m_axi port with its bundle and depth (in elements: beats for the code images)."""
    f = ctx.fetcher
    q_rows = ctx.num_heads * ctx.max_ctx
    kv_rows = ctx.num_kv_heads * ctx.max_ctx
    depth = {
        "q": q_rows * f.q_beats,
        "out": q_rows * f.v_beats,
        "token_dropped_at": ctx.token_state_rows * ctx.max_ctx,
        "token_importance": ctx.token_state_rows * ctx.max_ctx,
        "head_dropped_at": ctx.num_heads,
        "head_importance": ctx.num_heads,
        "mult": ctx.num_heads,
        "shift": ctx.num_heads,
        "v_weight": ctx.num_heads,
        "requants": 1,
    }
    ports = [
        {"name": name, "bundle": bundle, "depth": depth[name]} for name, bundle in INTERFACE_BUNDLES
    ]
    k_depth = kv_rows * (f.k_msb_beats + f.k_lsb_beats)
    ports += [{"name": f"k{i}", "bundle": f"gmem_k{i}", "depth": k_depth} for i in range(f.k_lanes)]
    v_depth = kv_rows * f.v_beats
    ports += [{"name": f"v{i}", "bundle": f"gmem_v{i}", "depth": v_depth} for i in range(f.v_lanes)]
    return ports
