"""Map every op onto a SpAtten engine, with the engine's parameters decided here."""

from __future__ import annotations

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.passes.registry import register_pass

NAME = "lower-to-engines"


def engine_table(g: AttnGraph, cfg: Config) -> dict[str, str]:
    """Engine (with parameters) per op kind. Lanes split `hardware.multipliers` evenly between
    the Q·K and prob·V arrays, as SpAtten does (512 + 512): keys per cycle = lanes / head_dim."""
    hw, d = cfg.hardware, g.info.head_dim
    half = max(hw.multipliers // 2, d)
    keys_per_cycle = max(1, half // d)
    p = hw.topk_parallelism
    return {
        "load_q": f"fetcher[rows=queries, width={d}]",
        "matmul_qk": f"qk[keys_per_cycle={keys_per_cycle}, multipliers={keys_per_cycle * d}, "
        f"unroll={d}]",
        "scale": "qk[score_multiplier=23b, saturate=24b]",
        "causal_mask": "softmax[mask=causal]",
        "softmax": "softmax[exp=2 tables(16+1024), recip=table(2048)]",
        "requant": "requant[decision=max prob, refetch=k_lsb]",
        "value_topk": f"value_topk[comparators={p}]",
        "matmul_pv": f"pv[dims_per_cycle={d}, multipliers={keys_per_cycle * d}]",
        "head_concat": f"writeback[width={d}]",
        "token_importance": "token_accumulator[width=64]",
        "token_select": f"token_topk[comparators={p}]",
        "head_importance": "head_accumulator[width=64]",
        "head_select": f"head_topk[comparators={p}]",
    }


@register_pass(NAME, requires={"tiled"}, provides={"lowered"})
def lower_to_engines(g: AttnGraph, cfg: Config) -> AttnGraph:
    """Assign each op to the engine that implements it (SpAtten paper section IV).

    Precondition: a tiled graph (K/V fetches already carry their tile plan).
    Effect: every node is annotated `@ engine[params]` (shown by `spatten ir --after all`):
    fetcher, qk, softmax, requant, value_topk, pv, the token / head accumulators and top-k
    engines, writeback. The HLS back-end emits one engine block per annotation.
    Postcondition: property `lowered`; every node has an engine.
    """
    table = engine_table(g, cfg)
    for node in list(g.nx_graph.nodes):
        if g.engine(node) is None:
            g.set_engine(node, table[g.op(node).KIND])
    return g
