"""`spatten sweep` (a space's points on Dask, their Pareto front) and `spatten tune` (the
cheapest point that meets a target, as a config)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from spatten_hls.compiler.cli.argtypes import int_in
from spatten_hls.compiler.errors import CompilerError, printable
from spatten_hls.compiler.jsonfmt import dumps
from spatten_hls.compiler.optional import require
from spatten_hls.compiler.outputs import output_file, write_bytes_atomic

MAX_WORKERS = 256
_ADDRESS = re.compile(r"(tcp|tls)://[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}")


def scheduler_address(text: str) -> str:
    if not _ADDRESS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not tcp://HOST:PORT")
    return text


scheduler_address.__name__ = "address"


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def _cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a model (as for spatten compile or eval)")
    p.add_argument("--space", metavar="SPACE.toml", required=True, help="the design space")
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        type=scheduler_address,
        help="a running Dask scheduler, tcp://HOST:PORT (default: a local cluster)",
    )
    p.add_argument(
        "--workers",
        type=int_in(1, MAX_WORKERS),
        default=None,
        metavar="N",
        help="worker processes of the local cluster (default: one per CPU)",
    )


def add_parser(
    sub: argparse._SubParsersAction, common: argparse.ArgumentParser, model_help: str
) -> None:
    s = sub.add_parser(
        "sweep",
        parents=[common],
        help="evaluate a design space on Dask; its Pareto front",
        description="Evaluate every point of SPACE.toml (performance model; real-model "
        "fidelity with an [eval] table) on a Dask cluster, streaming DIR/results.jsonl "
        "(resumable: a rerun skips the points done) and writing the non-dominated points "
        "to DIR/pareto.csv and DIR/pareto.png.",
    )
    _cluster_options(s)
    s.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        type=Path,
        required=True,
        help="results.jsonl, pareto.csv and pareto.png go here (a rerun resumes)",
    )
    s.add_argument("--json", action="store_true", help="print the outcome as JSON")
    s.set_defaults(run=run_sweep_cmd)
    t = sub.add_parser(
        "tune",
        parents=[common],
        help="the cheapest point of a space that meets a target, as a config",
        description="Sweep SPACE.toml (as spatten sweep, resumable) and write the point "
        "that meets --target and minimizes --minimize as a complete, commented config.",
    )
    _cluster_options(t)
    t.add_argument("--target", required=True, metavar="EXPR", help='e.g. "ppl_change<=0.05"')
    t.add_argument("--minimize", required=True, metavar="METRIC", help="e.g. latency_cycles")
    t.add_argument(
        "-o",
        "--output",
        metavar="BEST.toml",
        type=Path,
        required=True,
        help="the chosen point's complete config",
    )
    t.add_argument(
        "--results",
        metavar="DIR",
        type=Path,
        help="the sweep's directory (default: BEST.sweep beside BEST.toml)",
    )
    t.set_defaults(run=run_tune_cmd)


def _sweep(args: argparse.Namespace, directory: Path, feature: str):
    """Load and check the space (before any cluster starts), then sweep it."""
    from spatten_hls.compiler.dse.space import load_space
    from spatten_hls.compiler.dse.sweep import run_sweep

    require("sweep", feature)
    space = load_space(args.space)
    if args.scheduler is not None and args.workers is not None:
        raise CompilerError("--workers sizes the local cluster; --scheduler names another")
    text = None
    if space.eval is not None:
        require("realmodels", f"{args.space}: [eval]")
        if space.eval.text_file is not None:
            from spatten_hls.compiler.realmodels.text import read_text_file

            text = read_text_file(space.eval.text_file)
    return space, run_sweep(
        args.model,
        space,
        directory,
        args.scheduler,
        args.workers or default_workers(),
        progress=sys.stderr.isatty(),
        text=text,
        feature=feature,
        log=lambda line: print(printable(line), file=sys.stderr, flush=True),
    )


def _summary(args, space, outcome) -> str:
    failed = sum(r["status"] == "error" for r in outcome.records)
    rate = outcome.evaluated / outcome.seconds if outcome.seconds else 0.0
    lines = [
        f"{args.model}: {len(outcome.records)} points of {space.source} ({space.mode}); "
        f"{outcome.reused} reused, {outcome.evaluated} evaluated ({rate:.2f} points/s), "
        f"{failed} failed, in {outcome.seconds:.1f} s",
        f"Pareto front over {', '.join(space.objectives)}: {len(outcome.front)} points",
    ]
    header = ["id", *space.swept_keys, *space.objectives]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for r in outcome.front:
        cells = [r["id"], *(repr(r["point"][k]) for k in space.swept_keys)]
        cells += [f"{r['metrics'][m]:.6g}" for m in space.objectives]
        lines.append("| " + " | ".join(cells) + " |")
    errors = [r for r in outcome.records if r["status"] == "error"]
    for r in errors[:5]:
        lines.append(f"failed {r['id']}: {r['error']}")
    if len(errors) > 5:
        lines.append(f"... {len(errors) - 5} more failed points in {outcome.directory}")
    return "\n".join(lines) + "\n"


def _check_lost(outcome) -> None:
    if outcome.lost:
        raise CompilerError(
            f"{outcome.lost} points were lost with their workers; rerun the same sweep to "
            f"evaluate them (the {len(outcome.records)} recorded are kept)"
        )


def run_sweep_cmd(args: argparse.Namespace) -> int:
    space, outcome = _sweep(args, args.output, "spatten sweep")
    if args.json:
        doc = {
            "model": args.model,
            "space": space.source,
            "points": len(outcome.records),
            "reused": outcome.reused,
            "evaluated": outcome.evaluated,
            "failed": sum(r["status"] == "error" for r in outcome.records),
            "lost": outcome.lost,
            "seconds": round(outcome.seconds, 3),
            "objectives": list(space.objectives),
            "front": outcome.front,
        }
        sys.stdout.write(dumps(doc))
    else:
        sys.stdout.write(_summary(args, space, outcome))
    print("wrote " + ", ".join(map(str, outcome.written)), file=sys.stderr)
    _check_lost(outcome)
    return 0


def run_tune_cmd(args: argparse.Namespace) -> int:
    from spatten_hls.compiler.dse.metrics import check_metric
    from spatten_hls.compiler.dse.tune import best_toml, choose, parse_target, why

    target = parse_target(args.target)  # both checked before the sweep starts
    check_metric(args.minimize, "--minimize")
    output = output_file(args.output)
    directory = args.results or output.with_name(output.stem + ".sweep")
    space, outcome = _sweep(args, directory, "spatten tune")
    _check_lost(outcome)
    choice = choose(outcome.records, target, args.minimize)
    reasons = why(choice, target, args.minimize, space.swept_keys)
    header = [
        printable(
            f"spatten tune {args.model} --space {args.space} --target "
            f"{args.target!r} --minimize {args.minimize}"
        ),
        f"point {choice.winner['id']} of {len(outcome.records)} ({outcome.directory})",
        *reasons,
    ]
    doc = space.config_document(choice.winner["point"])
    text = best_toml(doc, header, choice.winner["point"], space.swept_keys)
    for line in reasons:
        print(line)
    write_bytes_atomic(
        output, text.encode("utf-8"), then=lambda: print(f"wrote {output}", file=sys.stderr)
    )
    return 0
