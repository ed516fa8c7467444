"""`spatten compile` (emit the Vitis HLS project) and `spatten csim` (g++ C-simulation)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from spatten_hls.compiler.cli.argtypes import seed
from spatten_hls.compiler.codegen.cosim_run import layer_span
from spatten_hls.compiler.codegen.counters import CsimCounters
from spatten_hls.compiler.codegen.csim import run_csim
from spatten_hls.compiler.codegen.project import project_files
from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.jsonfmt import dumps
from spatten_hls.compiler.output_dir import write_tree
from spatten_hls.compiler.sim import RunExtent


def add_parser(
    sub: argparse._SubParsersAction, common: argparse.ArgumentParser, model_help: str
) -> None:
    p = sub.add_parser(
        "compile",
        parents=[common],
        help="emit a Vitis HLS project",
        description="Compile MODEL's attention into a Vitis HLS project in DIR: sources, "
        "testbench with golden vectors from the simulator, tcl/cfg flows.",
    )
    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument("--config", metavar="FILE", help="TOML configuration")
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        type=Path,
        required=True,
        help="project directory to create",
    )
    p.add_argument("--force", action="store_true", help="replace a non-empty DIR")
    p.add_argument("--seed", type=seed, default=0, help="seed of the golden vectors' inputs")
    p.add_argument(
        "--cosim-size",
        action="store_true",
        help="golden vectors of a reduced run (one layer, a short sequence, one decode step) "
        "of the same design, for C/RTL co-simulation",
    )
    p.add_argument(
        "--dump-ir-after-all",
        metavar="DIR",
        type=Path,
        help="write NN-pass-name.ir.txt into DIR after every pass",
    )
    p.set_defaults(run=run_compile)
    c = sub.add_parser(
        "csim",
        parents=[common],
        help="C-simulate an emitted project with g++",
        description="Build DIR's testbench with g++ and the ap_types headers and compare the "
        "design with the simulator's golden vectors, bit for bit.",
    )
    c.add_argument("project", metavar="DIR", type=Path, help="a directory from spatten compile")
    c.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: passed, failed, dram_bytes per port, cycles per engine",
    )
    c.set_defaults(run=run_csim_cmd)


def run_compile(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    compiled = compile_model(args.model, args.config, dump_dir=args.dump_ir_after_all)
    cfg = compiled.config
    files = project_files(
        compiled.graph,
        cfg.to_toml(),
        Path(cfg.source).name,
        seed=args.seed,
        cosim_size=args.cosim_size,
    )
    notes = write_tree(
        files,
        args.output,
        args.force,
        then=lambda: print(
            f"wrote {args.output} ({len(files)} files) in {time.perf_counter() - start:.2f} s",
            flush=True,
        ),
    )
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def run_csim_cmd(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    result = run_csim(args.project, progress=sys.stderr.isatty())
    findings = sys.stderr if args.json else sys.stdout  # --json: stdout holds the object only
    for line in result.checks:
        if not line.endswith(": ok"):
            print(line, file=findings)
    for line in result.output.splitlines():
        if line.startswith("error: "):  # e.g. a golden file of the wrong size
            print(f"testbench {line}", file=findings)
    for warning in result.stream_warnings:
        print(f"stream warning: {warning}", file=findings)
    if args.json:
        sys.stdout.write(dumps(result.as_dict()))
    else:
        if result.run is not None:
            print(run_text(result.run))
        print(measured_text(result.measured), end="")
        print(result.summary())  # the verdict stays the last line
    print(f"csim took {time.perf_counter() - start:.2f} s", file=sys.stderr)
    return 0 if result.ok else 1


def run_text(run: RunExtent) -> str:
    """The golden run's extent, e.g. 'golden run: layers 0-11, seq_len 128, steps 1'."""
    return f"golden run: {layer_span(run)}, seq_len {run.seq_len}, steps {run.steps}"


def measured_text(m: CsimCounters) -> str:
    """The counters as text: bytes per port, the cycle estimate per engine."""
    ports = ", ".join(f"{k} {v:,}" for k, v in m.dram_bytes.items() if k != "total")
    engines = ", ".join(f"{k} {v:,}" for k, v in m.cycles.items() if k != "total")
    return (
        f"DRAM bytes at the ports: {m.dram_bytes['total']:,} ({ports})\n"
        f"cycles (estimate from the loop nest, requested IIs assumed met): "
        f"{m.cycles['total']:,}; busy per engine: {engines}\n"
    )
