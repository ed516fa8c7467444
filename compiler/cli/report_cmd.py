"""`spatten report`: analytical performance and resource report of a model or a project."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spatten_hls.compiler.config import load_config
from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.jsonfmt import dumps
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.sim import simulate


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,
               model_help: str) -> None:
    p = sub.add_parser(
        "report", parents=[common], help="latency, throughput and resource estimate",
        description="Simulate MODEL (or the final IR of a project DIR written by "
                    "'spatten compile') and report per-layer cycles, the compute/memory "
                    "bound, throughput, DRAM reduction and FPGA resources.",
    )
    p.add_argument("model", metavar="MODEL|DIR",
                   help=f"{model_help}; or a project directory from 'spatten compile'")
    p.add_argument("--config", metavar="FILE",
                   help="TOML configuration (default: DIR/config.toml for a project)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", metavar="FILE.png", type=Path,
                   help="also write a roofline and per-layer plot (needs matplotlib)")
    p.set_defaults(run=run)


def _load_project(directory: Path, config: str | None):
    from spatten_hls.compiler.ir.serialize import from_json
    ir_path = directory / "ir" / "final.ir.json"
    if not ir_path.is_file():
        raise CompilerError(f"{directory}: not a project directory (no ir/final.ir.json)")
    cfg = load_config(config if config is not None else directory / "config.toml")
    try:
        graph = from_json(ir_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CompilerError(f"{ir_path}: cannot read: {exc}") from None
    return graph, cfg


def run(args: argparse.Namespace) -> int:
    path = Path(args.model)
    if path.is_dir() and (path / "ir" / "final.ir.json").exists():
        graph, cfg = _load_project(path, args.config)
    else:
        compiled = compile_model(args.model, args.config)
        graph, cfg = compiled.graph, compiled.config
    result = simulate(graph, seed=args.seed, reference=False, progress=sys.stderr.isatty(),
                      topk_parallelism=cfg.hardware.topk_parallelism)
    report = performance_report(result, cfg)
    if args.plot is not None:
        if not args.plot.parent.is_dir():
            raise CompilerError(f"--plot {args.plot}: directory {args.plot.parent} does not exist")
        from spatten_hls.compiler.perf.plot import plot_report

        plot_report(report, args.plot)
    if args.json:
        sys.stdout.write(dumps(report.as_dict()))
    else:
        sys.stdout.write(report.to_text())
    return 0
