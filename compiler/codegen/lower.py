"""The render context of the HLS project, from a lowered IR and its config.

Every decision is made here (engine parameters, keep schedules, widths, interface depths,
pragmas' factors); the templates only substitute. The context is frozen and holds only
strings, integers, booleans and lists of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from spatten_hls.compiler.codegen.tiling import TilePlan, plan_tiles
from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import CodegenError
from spatten_hls.compiler.ir.graph import AttnGraph, node_sort_key
from spatten_hls.compiler.ir.ops_spatten import HeadSelect, TokenSelect, ValueTopK
from spatten_hls.compiler.passes.schedule import as_ratio
from spatten_hls.compiler.sim.handlers_spatten import threshold_code

# The fetcher's data FIFOs: SpAtten's are 64 deep (paper section IV-A); a whole K row of
# HEAD_DIM words is in flight at most, so 64 also covers head_dim 64 without stalling.
FETCH_FIFO_DEPTH = 64


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
    token_keep: list[int]
    head_keep: list[int]
    part: str
    clock_mhz: float
    clock_period_ns: str
    qk_lanes: int
    pv_lanes: int
    fifo_depth: int
    tiles: TilePlan
    engines: list[EngineParams]
    config_toml: str


def project_context(g: AttnGraph, cfg: Config) -> ProjectContext:
    """Everything the templates need, from a lowered IR (passes `tile`, `lower-to-engines`)."""
    if "lowered" not in g.properties:
        raise CodegenError(
            "the graph is not lowered to engines: compile with the default "
            "pipeline (its last passes are tile and lower-to-engines)"
        )
    info, q, hw = g.info, cfg.quantization, cfg.hardware
    if info.head_dim > hw.head_dim:
        raise CodegenError(
            f"model head_dim {info.head_dim} exceeds 'hardware.head_dim' = {hw.head_dim}"
        )
    tiles = plan_tiles(info, hw)
    token_keep = [info.context] * info.num_layers
    head_keep = [info.num_heads] * info.num_layers
    for node in g.nx_graph.nodes:
        op = g.op(node)
        if isinstance(op, TokenSelect):
            token_keep[op.layer] = op.keep
        elif isinstance(op, HeadSelect):
            head_keep[op.layer] = op.keep
    value_keep = as_ratio(cfg.value_pruning.keep)
    qk_lanes = max(1, hw.multipliers // 2 // info.head_dim)
    pv_lanes = max(1, hw.multipliers // 2 // info.head_dim)
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
        q_bits=q.q_bits,
        k_msb_bits=q.k_msb_bits,
        k_lsb_bits=q.k_lsb_bits,
        v_bits=q.v_bits,
        causal=info.causal and info.stage == "summarization",
        progressive="k-planes" in g.properties and q.progressive,
        token_pruning=cfg.token_pruning.enabled,
        head_pruning=cfg.head_pruning.enabled,
        value_pruning=any(isinstance(g.op(n), ValueTopK) for n in g.nx_graph.nodes),
        keep_first=cfg.token_pruning.keep_first,
        keep_recent=cfg.token_pruning.keep_recent,
        value_keep_num=value_keep.numerator,
        value_keep_den=value_keep.denominator,
        threshold_code=threshold_code(q.requant_threshold),
        topk_parallelism=hw.topk_parallelism,
        token_keep=token_keep,
        head_keep=head_keep,
        part=hw.part,
        clock_mhz=hw.clock_mhz,
        clock_period_ns=f"{1000.0 / hw.clock_mhz:.3f}",
        qk_lanes=qk_lanes,
        pv_lanes=pv_lanes,
        fifo_depth=FETCH_FIFO_DEPTH,
        tiles=tiles,
        engines=_engines(g),
        config_toml=cfg.to_toml(),
    )


def _engines(g: AttnGraph) -> list[EngineParams]:
    """One entry per engine annotation of the lowered IR, with an example node and a count."""
    groups: dict[str, list[str]] = {}
    for node in sorted(g.nx_graph.nodes, key=node_sort_key):
        groups.setdefault(g.engine(node), []).append(node)
    engines = []
    for annotation, nodes in sorted(groups.items()):
        name, _, rest = annotation.partition("[")
        params = [tuple(p.strip().split("=", 1)) for p in rest.rstrip("]").split(", ") if "=" in p]
        engines.append(
            EngineParams(name, f"%{nodes[0]} (+{len(nodes) - 1} more)", [(k, v) for k, v in params])
        )
    return engines
