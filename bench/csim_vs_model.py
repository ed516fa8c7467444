"""The emitted design measured in C-simulation against the performance model and the roofs.

For each case the project is compiled and C-simulated with g++ (bit-exact against the golden
vectors), and the same design is estimated by `spatten report`'s model on the simulator's
records. Printed per case: csim's cycle estimate and the model's latency (ratio), csim's
GOP/s at the plan's clock and its fraction of the compute roof (2 ops per multiplier per
cycle), the bytes csim counted at the ports against the simulator's count and against the
dense 12-bit and fp16 designs.

    python bench/csim_vs_model.py [--cases dense,spatten,gpt2,smollm2,tiled]

The cycle figures are estimates from the emitted loop nest (requested IIs assumed met), not
Vitis numbers; the bytes are counted at the design's m_axi ports.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from spatten_hls.compiler.codegen.csim import run_csim
from spatten_hls.compiler.codegen.project import project_files
from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.output_dir import write_tree
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.sim import simulate
from spatten_hls.compiler.sim.result import PLANES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "configs"
# A tiled design reads K and V per query row (docs/hls.md, "Tiling"): 192 tokens on 64-row
# buffers keep its C-simulation to a minute or two
TILED = "[model]\nseq_len = 192\n[hardware]\nmax_tokens = 64\n"
CASES = {  # model, example config (or None), TOML text appended
    "dense": ("bert-base", "bert-base-384.toml", ""),
    "spatten": ("bert-base", "bert-base-spatten.toml", ""),
    "gpt2": ("gpt2-small", "gpt2-small-traces.toml", ""),
    "smollm2": ("smollm2-135m", "smollm2-generation.toml", ""),
    "tiled": ("bert-base", None, TILED),
}


def run_case(name: str, tmp: Path) -> dict:
    model, config, extra = CASES[name]
    cfg_path = tmp / f"{name}.toml"
    base = (EXAMPLES / config).read_text(encoding="utf-8") if config else ""
    cfg_path.write_text(base + extra, "utf-8")
    compiled = compile_model(model, cfg_path)
    graph, plan = compiled.graph, compiled.graph.lowered_plan()
    project = tmp / name
    write_tree(project_files(graph, compiled.config.to_toml(), cfg_path.name), project, False)
    start = time.perf_counter()
    csim = run_csim(project)
    seconds = time.perf_counter() - start
    result = simulate(graph, seed=0, reference=False)
    report = performance_report(result, plan, cfg_path.name)
    measured = csim.measured
    cycles = measured.cycles["total"]
    latency_s = cycles / (plan.target.clock_mhz * 1e6)
    gops = report.roofline.ops / latency_s / 1e9
    return {
        "case": name,
        "ok": csim.ok,
        "csim_s": seconds,
        "csim_cycles": cycles,
        "model_cycles": report.latency_cycles,
        "ratio": report.latency_cycles / cycles,
        "gops": gops,
        "roof": report.roofline.compute_roof_gops,
        "bytes": measured.dram_bytes,
        "sim_bytes": result.dram_bytes,
        "dense12": report.dense_dram_bytes,
        "fp16": report.dense_fp16_dram_bytes,
        "bound": report.bound,
        "bandwidth_gbps": report.roofline.bandwidth_gbps,
        "seconds": latency_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            r = run_case(name, Path(tmp))
            b = r["bytes"]
            planes = sum(b[p] for p in PLANES)
            same = all(b[p] == r["sim_bytes"][p] for p in PLANES)
            moved = b["total"] / r["seconds"] / 1e9 if r["seconds"] else 0.0
            print(
                f"{r['case']:8s} csim {'ok' if r['ok'] else 'FAILED'} in {r['csim_s']:.1f} s | "
                f"cycles csim {r['csim_cycles']:,} model {r['model_cycles']:,.0f} "
                f"(model/csim {r['ratio']:.3f}) | {r['gops']:.1f} GOP/s = "
                f"{r['gops'] / r['roof']:.1%} of the {r['roof']:.0f} GOP/s roof, "
                f"{r['bound']}-bound"
            )
            print(
                f"{'':8s} bytes at the ports {b['total']:,} (Q/K/V planes {planes:,}, "
                f"simulator {'equal' if same else 'DIFFERENT'}); dense 12-bit "
                f"{r['dense12']:,} ({r['dense12'] / planes:.2f}x), fp16 {r['fp16']:,} "
                f"({r['fp16'] / planes:.2f}x); {moved:.1f} GB/s of "
                f"{r['bandwidth_gbps']:.0f}"
            )


if __name__ == "__main__":
    main()
