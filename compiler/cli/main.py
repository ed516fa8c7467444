"""`spatten` entry point: argument parsing, dispatch and the error contract.

A `CompilerError` becomes one `error: ...` line on stderr and exit status 1; usage errors exit
2 (argparse). A traceback is shown only with `--debug`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from spatten_hls.compiler import __version__
from spatten_hls.compiler.cli import (
    codegen_cmd,
    eval_cmd,
    ir_cmd,
    report_cmd,
    simulate_cmd,
    sweep_cmd,
    synth_report_cmd,
)
from spatten_hls.compiler.errors import CompilerError, printable

COMMANDS = (
    ir_cmd,
    simulate_cmd,
    codegen_cmd,
    eval_cmd,
    report_cmd,
    synth_report_cmd,
    sweep_cmd,
)

MODEL_HELP = (
    "preset name (bert-base, bert-large, gpt2-small, gpt2-medium, minilm-l6, "
    "smollm2-135m), a Hugging Face config.json, a model directory, or a .gguf file"
)


class Parser(argparse.ArgumentParser):
    """Usage errors as one `error:` line (exit status 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {printable(message)} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logging",
    )
    parser = Parser(
        prog="spatten",
        description="SpAtten sparse-attention HLS compiler: IR, simulation, HLS projects.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"spatten-hls {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub, common, MODEL_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except CompilerError as exc:
        if debug:
            raise
        more = " (details with --debug)" if exc.headline() != str(exc) else ""
        print(f"error: {printable(exc.headline())}{more}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `spatten ir ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 1
    except MemoryError:
        if debug:
            raise
        print("error: out of memory", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, the traceback with --debug
        if debug:
            raise
        print(
            f"error: internal error ({type(exc).__name__}: {printable(str(exc))[:200]}); "
            f"rerun with --debug for the traceback and please report it",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
