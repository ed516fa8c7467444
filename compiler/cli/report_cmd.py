"""`spatten report`: analytical performance and resource report of a model or a project."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spatten_hls.compiler.cli.argtypes import seed
from spatten_hls.compiler.config import Config, load_config
from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.errors import CompilerError, IRVerificationError
from spatten_hls.compiler.input_files import read_text
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.serialize import from_json
from spatten_hls.compiler.ir.verify import verify
from spatten_hls.compiler.jsonfmt import dumps
from spatten_hls.compiler.outputs import output_file, write_bytes_atomic
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.perf.plot import plot_report
from spatten_hls.compiler.sim import simulate


def add_parser(
    sub: argparse._SubParsersAction, common: argparse.ArgumentParser, model_help: str
) -> None:
    p = sub.add_parser(
        "report",
        parents=[common],
        help="latency, throughput and resource estimate",
        description="Simulate MODEL (or the final IR of a project DIR written by "
        "'spatten compile') and report per-layer cycles, the compute/memory "
        "bound, throughput, DRAM reduction and FPGA resources.",
    )
    p.add_argument(
        "model",
        metavar="MODEL|DIR",
        help=f"{model_help}; or a project directory from 'spatten compile'",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration (default: DIR/config.toml for a project)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        type=Path,
        help="also write a roofline and per-layer plot (needs matplotlib)",
    )
    p.set_defaults(run=run)


def load_project(directory: Path, config: str | None) -> tuple[AttnGraph, Config]:
    """The final IR and config of a project, checked against each other (either may have
    been edited since `spatten compile` wrote them)."""
    ir_path = directory / "ir" / "final.ir.json"
    cfg = load_config(config if config is not None else directory / "config.toml")
    graph = from_json(read_text(ir_path, "IR file", IRVerificationError), str(ir_path))
    verify(graph)
    if "lowered" not in graph.properties:
        raise CompilerError(
            f"{ir_path}: not the final IR of a compiled project "
            f"(properties {', '.join(sorted(graph.properties))})"
        )
    expected = {
        "stage": cfg.model.stage,
        "seq_len": cfg.model.seq_len,
        "gen_tokens": cfg.model.gen_tokens,
    }
    for key, value in expected.items():
        if getattr(graph.info, key) != value:
            raise CompilerError(
                f"{ir_path}: info.{key} = {getattr(graph.info, key)!r} "
                f"disagrees with {cfg.source}: model.{key} = {value!r}"
            )
    return graph, cfg


def run(args: argparse.Namespace) -> int:
    path = Path(args.model)
    if path.is_dir() and (path / "ir" / "final.ir.json").exists():
        graph, cfg = load_project(path, args.config)
    else:
        compiled = compile_model(args.model, args.config)
        graph, cfg = compiled.graph, compiled.config
    if args.plot is not None:
        output_file(args.plot)  # a bad path fails before the simulation runs
    result = simulate(graph, seed=args.seed, reference=False, progress=sys.stderr.isatty())
    report = performance_report(result, graph.lowered_plan(), Path(cfg.source).name)
    png = plot_report(report) if args.plot is not None else None
    if args.json:
        sys.stdout.write(dumps(report.as_dict()))
    else:
        sys.stdout.write(report.to_text())
    if png is not None:
        sys.stdout.flush()
        write_bytes_atomic(
            args.plot, png, then=lambda: print(f"wrote {args.plot}", file=sys.stderr)
        )
    return 0
