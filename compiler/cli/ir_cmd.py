"""`spatten ir`: print the attention IR of a model, before or after passes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spatten_hls.compiler.driver import compile_model, pipeline_until
from spatten_hls.compiler.ir.dot import to_dot
from spatten_hls.compiler.ir.printer import print_ir
from spatten_hls.compiler.ir.serialize import to_json
from spatten_hls.compiler.outputs import output_file, write_text_atomic
from spatten_hls.compiler.passes import DEFAULT_PIPELINE

FORMATTERS = {"text": print_ir, "json": to_json, "dot": to_dot}


def add_parser(
    sub: argparse._SubParsersAction, common: argparse.ArgumentParser, model_help: str
) -> None:
    p = sub.add_parser(
        "ir",
        parents=[common],
        help="print the attention IR of a model",
        description="Build the attention IR of MODEL and print it, optionally after passes.",
    )
    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument("--config", metavar="FILE", help="TOML configuration")
    p.add_argument(
        "--after",
        metavar="PASS",
        help=f"run the pipeline up to PASS, or 'all' ({', '.join(DEFAULT_PIPELINE)})",
    )
    p.add_argument(
        "--format", choices=sorted(FORMATTERS), default="text", help="output format (default: text)"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument(
        "--dump-ir-after-all",
        metavar="DIR",
        type=Path,
        help="write NN-pass-name.ir.txt into DIR after every pass",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.output:
        output_file(Path(args.output))  # a bad path fails before any work
    passes = pipeline_until(args.after)
    if args.dump_ir_after_all is not None and args.after is None:
        passes = DEFAULT_PIPELINE
    compiled = compile_model(args.model, args.config, passes, dump_dir=args.dump_ir_after_all)
    text = FORMATTERS[args.format](compiled.graph)
    if args.output:
        write_text_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0
