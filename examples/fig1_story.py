"""SpAtten's Fig. 1 story on the simulator: BERT-base, one short sentence, cascade pruning.

Compiles `bert-base` with examples/fig1_story.toml (token and head pruning), simulates it on
seeded random inputs and prints, per layer, the tokens and heads the layer computed, and its
share of the dense layer's attention compute (Q·K and prob·V multiply-accumulates:
heads x tokens^2) and DRAM traffic (Q, K and V rows fetched; docs/cli.md "DRAM accounting").

    python examples/fig1_story.py [--seed N] [--config FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.sim import simulate
from spatten_hls.compiler.sim.dram import row_bytes

HERE = Path(__file__).resolve().parent


def layer_bytes(record, heads: list[int], info, quant) -> int:
    """Bytes one summarization layer fetches: a Q row per alive head and token, a K (both
    planes) and a V row per alive KV head and token (no value pruning or requant here)."""
    d = info.head_dim
    kv_alive = len({h // info.group_size for h in heads})
    k_row = row_bytes(quant.k_msb_bits, d) + row_bytes(quant.k_lsb_bits, d)
    return record.tokens_in * (
        len(heads) * row_bytes(quant.q_bits, d) + kv_alive * (k_row + row_bytes(quant.v_bits, d))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, default=HERE / "fig1_story.toml")
    args = parser.parse_args(argv)

    compiled = compile_model("bert-base", args.config)
    info, quant = compiled.graph.info, compiled.config.quantization
    result = simulate(compiled.graph, seed=args.seed)

    layers = result.layers
    # heads a layer computed: all in layer 0, then those kept after the previous layer
    alive = [list(range(info.num_heads))] + [r.heads_kept for r in layers[:-1]]
    dense_compute = info.num_heads * info.seq_len**2
    dense_bytes = result.dense_dram_bytes // info.num_layers
    per_layer = [layer_bytes(r, heads, info, quant) for r, heads in zip(layers, alive, strict=True)]
    if sum(per_layer) != result.dram_bytes["total"]:
        raise SystemExit(
            f"per-layer bytes {sum(per_layer)} != simulator's {result.dram_bytes['total']}"
        )

    print(
        f"{info.model}: {info.num_layers} layers x {info.num_heads} heads, "
        f"{info.seq_len}-token sentence (seed {args.seed})"
    )
    print(
        f"{'layer':>5} {'tokens in':>9} {'tokens kept':>11} {'heads':>7} {'compute':>8} {'DRAM':>6}"
    )
    compute_total = 0
    for record, nbytes in zip(layers, per_layer, strict=True):
        compute = record.heads_in * record.tokens_in**2
        compute_total += compute
        heads = f"{record.heads_in}->{len(record.heads_kept)}"
        print(
            f"{record.layer:5d} {record.tokens_in:9d} {len(record.kept_tokens):11d} "
            f"{heads:>7} {compute / dense_compute:8.1%} {nbytes / dense_bytes:6.1%}"
        )
    print(
        f"whole model: compute {compute_total / (dense_compute * info.num_layers):.1%} "
        f"of dense, DRAM {result.dram_bytes['total']:,} of {result.dense_dram_bytes:,} bytes "
        f"({result.dram_reduction:.2f}x less); tokens left: {layers[-1].kept_tokens}; "
        f"rel. error vs float {result.rel_err_vs_float:.1e}"
    )
    print(
        "paper, Fig. 1: tokens 11 -> 6 -> 2, heads 12 -> 10 -> 8, "
        "compute and memory access 100% -> 38% -> 12%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
