"""`spatten synth-report`: a Vitis csynth.xml report, and for a generated project the model's
estimate beside it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spatten_hls.compiler.cli.report_cmd import load_project
from spatten_hls.compiler.jsonfmt import dumps
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.perf.synth_compare import ii_flags, requested_iis, side_by_side
from spatten_hls.compiler.perf.synth_report import SynthReport, load_synth_report
from spatten_hls.compiler.sim import simulate


def add_parser(
    sub: argparse._SubParsersAction, common: argparse.ArgumentParser, model_help: str
) -> None:
    p = sub.add_parser(
        "synth-report",
        parents=[common],
        help="read a Vitis synthesis report, beside the model's estimate",
        description="Read a Vitis / Vivado HLS csynth.xml (or a project DIR's, from either "
        "flow's location) and print the part, clocks, latency, interval, resources and "
        "loops. For a project from 'spatten compile', also the model's estimate (spatten "
        "report) beside Vitis's, with their ratio, and the loops whose achieved II is above "
        "the one the source requests.",
    )
    p.add_argument("report", metavar="DIR|csynth.xml", type=Path)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    synth = load_synth_report(args.report)
    project = args.report if (args.report / "ir" / "final.ir.json").is_file() else None
    doc: dict = {"vitis": synth.as_dict()}
    rows, flags = [], []
    if project is not None:
        graph, cfg = load_project(project, None)
        result = simulate(graph, seed=0, reference=False, progress=sys.stderr.isatty())
        model = performance_report(result, graph.lowered_plan(), Path(cfg.source).name)
        info = graph.info
        calls = info.num_layers * (info.gen_tokens if info.stage == "generation" else 1)
        rows = side_by_side(synth, model, calls)
        flags = ii_flags(synth, requested_iis(project))
        doc["model_vs_vitis"] = [row.as_dict() for row in rows]
        doc["ii_above_requested"] = [flag.__dict__ for flag in flags]
    if args.json:
        sys.stdout.write(dumps(doc))
    else:
        sys.stdout.write(_text(synth, rows, flags, project is not None))
    return 0


def _num(value) -> str:
    if value is None:
        return "undef"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


def _text(synth: SynthReport, rows, flags, compared: bool) -> str:
    lines = [
        f"{synth.source}: {synth.top} on {synth.part} (report version {synth.version})",
        f"clock: target {_num(synth.target_clock_ns)} ns, estimated "
        f"{_num(synth.estimated_clock_ns)} ns",
        f"latency (cycles): best {_num(synth.latency_best)}, average "
        f"{_num(synth.latency_average)}, worst {_num(synth.latency_worst)}; interval "
        f"{_num(synth.interval_min)} to {_num(synth.interval_max)}"
        + (f" ({synth.pipeline_type})" if synth.pipeline_type else ""),
        "resources: "
        + ", ".join(
            f"{k} {_num(v)} of {_num(synth.available.get(k))}" for k, v in synth.used.items()
        ),
    ]
    if synth.loops:
        lines.append("| module | loop | trip count | latency | II | depth |")
        lines.append("|---|---|---|---|---|---|")
        for loop in synth.loops:
            lines.append(
                f"| {loop.module} | {loop.name} | {_num(loop.trip_count)} | "
                f"{_num(loop.latency)} | {_num(loop.ii)} | {_num(loop.depth)} |"
            )
    if compared:
        lines.append("model (spatten report) against Vitis:")
        lines.append("| quantity | model | Vitis | Vitis / model |")
        lines.append("|---|---|---|---|")
        for row in rows:
            ratio = row.ratio
            lines.append(
                f"| {row.quantity} | {_num(row.model)} | {_num(row.vitis)} | "
                f"{'-' if ratio is None else f'{ratio:.2f}'} |"
            )
        for flag in flags:
            lines.append(
                f"II above the requested one: {flag.module}/{flag.loop} achieves II "
                f"{flag.achieved}, the source requests {flag.requested}"
            )
        if not flags:
            lines.append("no loop's achieved II is above the requested one")
    return "\n".join(lines) + "\n"
