"""`spatten simulate`: run a model's attention through the bit-accurate simulator."""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
from pathlib import Path

import numpy as np

from spatten_hls.compiler.cli.argtypes import seed
from spatten_hls.compiler.config import Config
from spatten_hls.compiler.driver import Compiled, compile_model, compile_spec
from spatten_hls.compiler.jsonfmt import dumps
from spatten_hls.compiler.outputs import output_file, write_bytes_atomic
from spatten_hls.compiler.sim import SimResult, simulate
from spatten_hls.compiler.sim.inputs import load_inputs_npz


def add_parser(
    sub: argparse._SubParsersAction, common: argparse.ArgumentParser, model_help: str
) -> None:
    p = sub.add_parser(
        "simulate",
        parents=[common],
        help="bit-accurate functional simulation",
        description="Compile MODEL and run every attention layer through the bit-accurate "
        "simulator; report pruning, DRAM traffic and the error against float64.",
    )
    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument("--config", metavar="FILE", help="TOML configuration")
    p.add_argument("--seed", type=seed, default=0, help="seed of the random inputs (default 0)")
    p.add_argument(
        "--inputs",
        metavar="FILE.npz",
        type=Path,
        help="float32 q{L}, k{L}, v{L} arrays instead of random inputs",
    )
    p.add_argument(
        "--save",
        metavar="FILE.npz",
        type=Path,
        help="write the inputs, outputs out{L} and float references ref{L}",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.save is not None:
        output_file(args.save)  # a bad path fails before the simulation runs
    compiled = compile_model(args.model, args.config)
    inputs = load_inputs_npz(args.inputs, compiled.graph.info) if args.inputs else None
    result = simulate(compiled.graph, inputs, seed=args.seed, progress=sys.stderr.isatty())
    if args.save is not None:
        buffer = io.BytesIO()
        np.savez(buffer, **result.arrays_to_save())
        write_bytes_atomic(args.save, buffer.getvalue())
    if args.json:
        sys.stdout.write(dumps(result.to_json_dict()))
    else:
        sys.stdout.write(summary_text(result))
        if result.rel_err_vs_float is not None and result.rel_err_vs_float > LARGE_ERROR:
            sys.stdout.write(explain_error(compiled, result))
    return 0


def summary_text(result: SimResult) -> str:
    i = result.info
    stage = (
        f"summarization, {i.seq_len} tokens"
        if i.stage == "summarization"
        else f"generation, {i.gen_tokens} steps after a {i.seq_len}-token prompt"
    )
    lines = [
        f"{i.model}: {i.num_layers} layers x {i.num_heads} heads "
        f"({i.num_kv_heads} KV heads), head_dim {i.head_dim}, {stage}",
        f"{'layer':>5} {'tokens in':>9} {'kept':>6} {'heads':>9} {'V rows':>10} "
        f"{'requant':>7} {'rel err':>9}",
    ]
    for r in result.layers:
        err = f"{r.rel_err_vs_float:9.2e}" if r.rel_err_vs_float is not None else f"{'-':>9}"
        heads = f"{r.heads_in}->{len(r.heads_kept)}"
        lines.append(
            f"{r.layer:5d} {r.tokens_in:9d} {r.kept_count:6d} "
            f"{heads:>9} {r.values_fetched:10d} "
            f"{r.requant_fraction:7.1%} {err}"
        )
    d = result.dram_bytes
    lines.append(
        f"DRAM read: {d['total']:,} bytes (q {d['q']:,}, k_msb {d['k_msb']:,}, "
        f"k_lsb {d['k_lsb']:,}, v {d['v']:,}); dense 12-bit baseline "
        f"{result.dense_dram_bytes:,} bytes; reduction {result.dram_reduction:.2f}x"
    )
    if result.rel_err_vs_float is not None:
        lines.append(f"max |y_sim - y_float| / max |y_float| = {result.rel_err_vs_float:.3e}")
    return "\n".join(lines) + "\n"


# Above this relative error the summary says what the figure measures and what causes it.
LARGE_ERROR = 0.05


def explain_error(compiled: Compiled, result: SimResult) -> str:
    """What the error is relative to, and which lossy setting causes it: each one is undone in
    turn and the simulation run again on the same inputs."""
    cfg, q = compiled.config, compiled.config.quantization
    lines = [
        "the error is relative to float64 attention over the same surviving tokens and "
        "heads: token and head pruning are in the reference; quantization and value "
        "pruning are not"
    ]
    measured = []
    for cause, label, lossless in _lossless_variants(cfg):
        again = simulate(
            compile_spec(compiled.model, lossless).graph,
            result.inputs,
            progress=sys.stderr.isatty(),
        )
        measured.append((again.rel_err_vs_float, cause, label))
    if measured:
        lines.append(
            "measured again on the same inputs: "
            + "; ".join(f"{label}: {err:.3e}" for err, _, label in measured)
        )
        best, cause, _ = min(measured)
        if best < result.rel_err_vs_float / 2:
            lines.append(f"the largest part comes from {cause}")
    lines.append(
        f"bit widths: Q {q.q_bits}, K {q.k_msb_bits} MSB + {q.k_lsb_bits} LSB"
        + (f" (LSBs only for rows below max prob {q.requant_threshold:g})" if q.progressive else "")
        + f", V {q.v_bits}; docs/numerics.md bounds "
        "the quantization error"
    )
    return "".join(f"note: {line}\n" for line in lines)


def _lossless_variants(cfg: Config) -> list[tuple[str, str, Config]]:
    """(cause, what undoes it, config) per lossy setting that is on."""
    q = cfg.quantization
    variants = []
    if cfg.value_pruning.enabled:
        variants.append(
            (
                f"value pruning (keep {cfg.value_pruning.keep:g}, no renormalization)",
                "without value pruning",
                dataclasses.replace(
                    cfg, value_pruning=dataclasses.replace(cfg.value_pruning, enabled=False)
                ),
            )
        )
    if q.progressive:
        variants.append(
            (
                f"the rows computed with only K's {q.k_msb_bits} MSB bits "
                f"(max prob >= {q.requant_threshold:g})",
                f"with all {q.k_bits} K bits for every row",
                dataclasses.replace(cfg, quantization=dataclasses.replace(q, progressive=False)),
            )
        )
    if q.v_bits < 12:
        variants.append(
            (
                f"{q.v_bits}-bit V",
                "with 12-bit V",
                dataclasses.replace(cfg, quantization=dataclasses.replace(q, v_bits=12)),
            )
        )
    return variants
