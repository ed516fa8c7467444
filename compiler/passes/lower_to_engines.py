"""Map every op onto a SpAtten engine and complete the hardware plan."""

from __future__ import annotations

import dataclasses
import math

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import (
    HEAD_IMPORTANCE,
    TOKEN_IMPORTANCE,
    HeadImportance,
    Requant,
    TokenImportance,
    ValueTopK,
)
from spatten_hls.compiler.ir.plan import (
    SCAN_LANES,
    DotPlan,
    FetcherPlan,
    ImportancePlan,
    RequantPlan,
    SoftmaxPlan,
    TargetPlan,
    TopKPlan,
    ValueTopKPlan,
)
from spatten_hls.compiler.ir.token_state import token_state
from spatten_hls.compiler.passes.registry import register_pass
from spatten_hls.kernels import formats
from spatten_hls.kernels.topk import TOPK_ROUND_OVERHEAD

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


def dot_plans(multipliers: int, head_dim: int, fetcher: FetcherPlan) -> tuple[DotPlan, DotPlan]:
    """(Q·K, prob·V): half of `hardware.multipliers` per array (SpAtten: 512 + 512); a key is
    `head_dim` MACs, so keys per cycle = (multipliers / 2) / head_dim; a budget below one key
    a cycle for each is refused (the arrays would exceed it). Depths:
    Q·K multiplies, sums `head_dim` products in a tree and scales (4 cycles besides the
    tree); prob·V multiplies, sums `keys_per_cycle` products in a tree, accumulates and
    requantizes. Banks: the buffer serves the array's keys a cycle and the fetch lanes' rows
    (`lanes` rows every `beats` cycles, two writes a bank a cycle)."""
    keys = multipliers // 2 // head_dim
    if keys < 1:
        raise CompilerError(
            f"hardware.multipliers = {multipliers} is below one key a cycle for Q·K and "
            f"prob·V each at head_dim {head_dim}: it needs at least {2 * head_dim}"
        )
    k_writes = math.ceil(fetcher.k_lanes / (2 * fetcher.k_msb_beats))
    v_writes = math.ceil(fetcher.v_lanes / (2 * fetcher.v_beats))
    qk = DotPlan(
        multipliers=keys * head_dim,
        keys_per_cycle=keys,
        depth=4 + _log2(head_dim),
        banks=max(keys, k_writes),
    )
    pv = DotPlan(
        multipliers=keys * head_dim,
        keys_per_cycle=keys,
        depth=4 + _log2(keys),
        banks=max(keys, v_writes),
    )
    return qk, pv


MAX_VALUE_TOPK_ENGINES = 16  # engines/csim.h keeps a process key for each


def value_topk_engines(context: int, qk: DotPlan) -> int:
    """Value top-k threshold engines taking rows in turn, so that the quick-select keeps up
    with Q·K. At the comparator count that matches Q·K's key rate (2 x keys_per_cycle: a
    quick-select visits about 2n candidates, SpAtten's 16 at 8 keys a cycle) a row of n keys
    takes about 2n / P + TOPK_ROUND_OVERHEAD x 2 ln n cycles, Q·K n / keys_per_cycle + its
    depth; the engine count covers the ratio at the longest row. It does not depend on
    `hardware.topk_parallelism`, so fewer comparators still slow the design down."""
    n, comparators = max(context, 2), 2 * qk.keys_per_cycle
    select = 2 * n / comparators + TOPK_ROUND_OVERHEAD * 2 * math.log(n)
    rate = math.ceil(n / qk.keys_per_cycle) + qk.depth
    return min(MAX_VALUE_TOPK_ENGINES, max(1, math.ceil(select / rate)))


def _log2(n: int) -> int:
    return max(0, math.ceil(math.log2(n)))


def _has(g: AttnGraph, kind: type) -> bool:
    return any(isinstance(g.op(n), kind) for n in g.nx_graph.nodes)


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
    qk, pv = dot_plans(hw.multipliers, info.head_dim, g.plan.fetcher)
    threshold = _one(g, Requant, lambda op: op.threshold_code, "the threshold")
    keep = _one(g, ValueTopK, lambda op: op.keep_ratio, "the keep ratio")
    tokens = token_state(g)
    g.plan = dataclasses.replace(
        g.plan,
        qk=qk,
        softmax=SoftmaxPlan(
            lanes=qk.keys_per_cycle,
            exp_hi_entries=2**formats.EXP_INT_BITS,
            exp_lo_entries=2**formats.SCORE_FRAC,
            recip_entries=formats.RECIP_BASE,
            exp_depth=4 + _log2(qk.keys_per_cycle),
            norm_depth=6,
        ),
        requant=RequantPlan(enabled=threshold is not None, threshold_code=threshold or 0),
        value_topk=ValueTopKPlan(
            enabled=keep is not None,
            keep_num=keep.numerator if keep else 1,
            keep_den=keep.denominator if keep else 1,
            comparators=hw.topk_parallelism,
            engines=value_topk_engines(info.context, qk) if keep is not None else 1,
        ),
        pv=pv,
        topk=TopKPlan(comparators=hw.topk_parallelism, round_overhead=TOPK_ROUND_OVERHEAD),
        importance=ImportancePlan(
            token_bits=TOKEN_IMPORTANCE.width,
            head_bits=HEAD_IMPORTANCE.width,
            tokens=tokens.rows * info.context,
            heads=info.num_heads,
            token_pruning=_has(g, TokenImportance),
            head_pruning=_has(g, HeadImportance),
            scan_lanes=SCAN_LANES,
            token_state_rows=tokens.rows,
            token_state_groups=tokens.groups,
            token_scores_fresh=tokens.fresh,
            token_by_recency=tokens.by_recency,
            token_decay_shift=tokens.decay_shift,
            token_observation_window=tokens.observation_window,
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
