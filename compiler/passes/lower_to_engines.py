"""Map every op onto a SpAtten engine and complete the hardware plan."""

from __future__ import annotations

import dataclasses

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import (
    HEAD_IMPORTANCE,
    TOKEN_IMPORTANCE,
    Requant,
    ValueTopK,
)
from spatten_hls.compiler.ir.plan import (
    DotPlan,
    ImportancePlan,
    RequantPlan,
    SoftmaxPlan,
    TargetPlan,
    TopKPlan,
    ValueTopKPlan,
)
from spatten_hls.compiler.passes.registry import register_pass
from spatten_hls.kernels import formats

NAME = "lower-to-engines"

# The engine of each op kind (SpAtten paper section IV, Fig. 8).
ENGINE_OF = {
    "load_q": "fetcher",
    "load_k": "fetcher",
    "load_v": "fetcher",
    "load_k_msb": "fetcher",
    "load_k_lsb": "fetcher",
    "matmul_qk": "qk",
    "scale": "qk",
    "causal_mask": "softmax",
    "softmax": "softmax",
    "requant": "requant",
    "value_topk": "value_topk",
    "matmul_pv": "pv",
    "head_concat": "writeback",
    "token_importance": "token_accumulator",
    "token_select": "token_topk",
    "head_importance": "head_accumulator",
    "head_select": "head_topk",
}


def dot_plan(multipliers: int, head_dim: int) -> DotPlan:
    """Half of `hardware.multipliers` per array (SpAtten: 512 + 512); a key is `head_dim`
    MACs, so keys per cycle = (multipliers / 2) / head_dim, at least one."""
    keys = max(1, multipliers // 2 // head_dim)
    return DotPlan(multipliers=keys * head_dim, keys_per_cycle=keys)


def _one(g: AttnGraph, kind: type, value, what: str):
    """The value every `kind` node agrees on (None when the graph has none)."""
    values = {value(g.op(n)) for n in g.nx_graph.nodes if isinstance(g.op(n), kind)}
    if len(values) > 1:
        raise CompilerError(f"{kind.KIND} nodes disagree on {what}: {sorted(values)}")
    return values.pop() if values else None


@register_pass(NAME, requires={"tiled"}, provides={"lowered"})
def lower_to_engines(g: AttnGraph, cfg: Config) -> AttnGraph:
    """Assign each op to the engine that implements it and decide the engines' parameters.

    Precondition: a tiled graph (`g.plan` holds the fetcher).
    Effect: every node is annotated with its engine (`@ qk`), and the plan gets the Q·K and
    prob·V arrays, softmax lanes, the requant decision's threshold code, value top-k, the
    token/head top-k comparators, the importance accumulators and the target (part, clock,
    HBM), from `[hardware]` and the IR's own ops.
    Postcondition: property `lowered`; every node has an engine; `g.plan.complete`.
    """
    hw, info = cfg.hardware, g.info
    dot = dot_plan(hw.multipliers, info.head_dim)
    threshold = _one(g, Requant, lambda op: op.threshold_code, "the threshold")
    keep = _one(g, ValueTopK, lambda op: op.keep_ratio, "the keep ratio")
    g.plan = dataclasses.replace(
        g.plan,
        qk=dot,
        softmax=SoftmaxPlan(
            lanes=dot.keys_per_cycle,
            exp_hi_entries=2**formats.EXP_INT_BITS,
            exp_lo_entries=2**formats.SCORE_FRAC,
            recip_entries=formats.RECIP_BASE,
        ),
        requant=RequantPlan(enabled=threshold is not None, threshold_code=threshold or 0),
        value_topk=ValueTopKPlan(
            enabled=keep is not None,
            keep_num=keep.numerator if keep else 1,
            keep_den=keep.denominator if keep else 1,
            comparators=hw.topk_parallelism,
        ),
        pv=dot,
        topk=TopKPlan(comparators=hw.topk_parallelism),
        importance=ImportancePlan(
            token_bits=TOKEN_IMPORTANCE.width,
            head_bits=HEAD_IMPORTANCE.width,
            tokens=info.context,
            heads=info.num_heads,
        ),
        target=TargetPlan(
            part=hw.part,
            clock_mhz=hw.clock_mhz,
            hbm_channels=hw.hbm_channels,
            hbm_gbps=hw.hbm_gbps,
            multipliers=hw.multipliers,
            max_head_dim=hw.head_dim,
            max_tokens=hw.max_tokens,
        ),
    )
    for node in list(g.nx_graph.nodes):
        g.set_engine(node, ENGINE_OF[g.op(node).KIND])
    return g
