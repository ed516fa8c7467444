"""The render context of the HLS project, from a lowered IR and its hardware plan.

Every value comes from the plan or the IR (never the config): engine parameters, keep
schedules, widths, pragmas' factors. The templates only substitute. The context is frozen and
holds only strings, integers, booleans and lists of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from spatten_hls.compiler.errors import CodegenError
from spatten_hls.compiler.ir.graph import AttnGraph, node_sort_key
from spatten_hls.compiler.ir.ops_spatten import HeadSelect, TokenSelect
from spatten_hls.compiler.ir.plan import (
    ENGINE_PARAMS,
    FETCH_FIFO_DEPTH,
    STATE_ARRAYS,
    FetcherPlan,
    HardwarePlan,
)


@dataclass(frozen=True)
class EngineParams:
    """Per-engine parameters, each traceable to the IR nodes it implements."""

    name: str
    nodes: str  # an example IR node id, with the count of nodes it stands for
    params: list[tuple[str, str]]


@dataclass(frozen=True)
class ProjectContext:
    top: str
    model: str
    stage: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    group: int
    head_dim: int
    max_ctx: int
    seq_len: int
    gen_tokens: int
    q_bits: int
    k_msb_bits: int
    k_lsb_bits: int
    v_bits: int
    causal: bool
    progressive: bool
    token_pruning: bool
    head_pruning: bool
    value_pruning: bool
    keep_first: int
    keep_recent: int
    value_keep_num: int
    value_keep_den: int
    threshold_code: int
    topk_parallelism: int
    token_keep_num: list[int]  # per layer: keep max(1, floor(end * num / den)) tokens
    token_keep_den: list[int]  # (num == den: no selection after that layer)
    token_policy: str  # the token-selection policy the state and flags below realize
    token_state_rows: int
    token_state_groups: int  # state rows per layer: 1, or its KV heads
    token_scores_fresh: bool
    token_by_recency: bool
    token_decay_shift: int
    token_observation_window: int
    head_keep: list[int]
    part: str
    hbm_channels: int  # pseudo-channels the link config spreads the m_axi bundles over
    clock_mhz: float
    clock_period_ns: str
    qk_keys_per_cycle: int
    pv_keys_per_cycle: int
    qk_stream_ii: int
    pv_stream_ii: int
    fetch_fifo_depth: int
    state_arrays: int
    softmax_lanes: int
    value_topk_comparators: int
    value_topk_engines: int
    scan_lanes: int
    qk_depth: int
    pv_depth: int
    exp_depth: int
    norm_depth: int
    k_banks: int
    v_banks: int
    fetcher: FetcherPlan
    engines: list[EngineParams]


def project_context(g: AttnGraph) -> ProjectContext:
    """Everything the templates need, from a lowered IR (passes `tile`, `lower-to-engines`)."""
    plan = g.lowered_plan()
    info = g.info
    if info.head_dim > plan.target.max_head_dim:
        raise CodegenError(
            f"model head_dim {info.head_dim} exceeds 'hardware.head_dim' = "
            f"{plan.target.max_head_dim}"
        )
    ops = [g.op(n) for n in g.nx_graph.nodes]
    token_keep = [(1, 1)] * info.num_layers
    head_keep = [info.num_heads] * info.num_layers
    selects = [op for op in ops if isinstance(op, TokenSelect)]
    for op in ops:
        if isinstance(op, TokenSelect):
            token_keep[op.layer] = (op.keep_ratio.numerator, op.keep_ratio.denominator)
        elif isinstance(op, HeadSelect):
            head_keep[op.layer] = op.keep
    bits, target = plan.bits, plan.target
    return ProjectContext(
        top="spatten_top",
        model=info.model,
        stage=info.stage,
        num_layers=info.num_layers,
        num_heads=info.num_heads,
        num_kv_heads=info.num_kv_heads,
        group=info.group_size,
        head_dim=info.head_dim,
        max_ctx=info.context,
        seq_len=info.seq_len,
        gen_tokens=info.gen_tokens if info.stage == "generation" else 0,
        q_bits=bits.q,
        k_msb_bits=bits.k_msb,
        k_lsb_bits=bits.k_lsb,
        v_bits=bits.v,
        causal=info.causal and info.stage == "summarization",
        progressive=bits.progressive,
        token_pruning=plan.importance.token_pruning,
        head_pruning=plan.importance.head_pruning,
        value_pruning=plan.value_topk.enabled,
        keep_first=selects[0].keep_first if selects else 0,
        keep_recent=selects[0].keep_recent if selects else 0,
        value_keep_num=plan.value_topk.keep_num,
        value_keep_den=plan.value_topk.keep_den,
        threshold_code=plan.requant.threshold_code,
        topk_parallelism=plan.topk.comparators,
        token_keep_num=[num for num, _ in token_keep],
        token_keep_den=[den for _, den in token_keep],
        token_policy=_token_policy(plan),
        token_state_rows=plan.importance.token_state_rows,
        token_state_groups=plan.importance.token_state_groups,
        token_scores_fresh=plan.importance.token_scores_fresh,
        token_decay_shift=plan.importance.token_decay_shift,
        token_observation_window=plan.importance.token_observation_window,
        token_by_recency=plan.importance.token_by_recency,
        head_keep=head_keep,
        part=target.part,
        hbm_channels=target.hbm_channels,
        clock_mhz=target.clock_mhz,
        clock_period_ns=f"{1000.0 / target.clock_mhz:.3f}",
        qk_keys_per_cycle=plan.qk.keys_per_cycle,
        pv_keys_per_cycle=plan.pv.keys_per_cycle,
        qk_stream_ii=plan.qk_stream_ii,
        pv_stream_ii=plan.pv_stream_ii,
        fetch_fifo_depth=FETCH_FIFO_DEPTH,
        state_arrays=STATE_ARRAYS,
        softmax_lanes=plan.softmax.lanes,
        value_topk_comparators=plan.value_topk.comparators,
        value_topk_engines=plan.value_topk.engines,
        scan_lanes=plan.importance.scan_lanes,
        qk_depth=plan.qk.depth,
        pv_depth=plan.pv.depth,
        exp_depth=plan.softmax.exp_depth,
        norm_depth=plan.softmax.norm_depth,
        k_banks=plan.qk.banks,
        v_banks=plan.pv.banks,
        fetcher=plan.fetcher,
        engines=_engines(g, plan),
    )


def _token_policy(plan: HardwarePlan) -> str:
    """The policy's name, from what the plan builds (docs/cli.md, `[token_pruning] policy`)."""
    imp = plan.importance
    if imp.token_by_recency:
        return "window"
    if imp.token_scores_fresh:
        return "current"
    return "per-layer" if imp.token_state_rows > 1 else "cascade"


def _engines(g: AttnGraph, plan: HardwarePlan) -> list[EngineParams]:
    """One entry per engine of the lowered IR, an example node, and the plan's parameters."""
    groups: dict[str, list[str]] = {}
    for node in sorted(g.nx_graph.nodes, key=node_sort_key):
        groups.setdefault(g.engine(node), []).append(node)
    engines = []
    for name, nodes in sorted(groups.items()):
        entry = getattr(plan, ENGINE_PARAMS[name]) if name in ENGINE_PARAMS else None
        params = sorted(dataclasses.asdict(entry).items()) if entry is not None else []
        engines.append(
            EngineParams(
                name, f"%{nodes[0]} (+{len(nodes) - 1} more)", [(k, _text(v)) for k, v in params]
            )
        )
    return engines


def _text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
