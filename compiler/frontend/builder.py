"""Front-end lowering: a `ModelSpec` plus `[model]` settings become the dense attention IR.

Per layer and query head: load_q -> matmul_qk -> scale -> [causal_mask] -> softmax ->
matmul_pv, with K and V loaded once per KV head (shared by the group's query heads under
grouped-query attention), and one head_concat per layer. Summarization graphs process all
`seq_len` queries; generation graphs describe one decode step (a single query against a KV
cache of at most `seq_len + gen_tokens` keys; the newest query sees every cached key, so no
mask node is needed).
"""

from __future__ import annotations

import math

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import ConfigError
from spatten_hls.compiler.frontend.model import ModelSpec
from spatten_hls.compiler.ir.graph import AttnGraph, GraphInfo, query_rows
from spatten_hls.compiler.ir.ops import (
    CausalMask,
    HeadConcat,
    LoadK,
    LoadQ,
    LoadV,
    MatMulPV,
    MatMulQK,
    Scale,
    Softmax,
)


def graph_info(model: ModelSpec, cfg: Config) -> GraphInfo:
    return GraphInfo(
        model=model.name,
        family=model.family,
        stage=cfg.model.stage,
        num_layers=model.num_layers,
        num_heads=model.num_heads,
        num_kv_heads=model.num_kv_heads,
        head_dim=model.head_dim,
        seq_len=cfg.model.seq_len,
        gen_tokens=cfg.model.gen_tokens,
        causal=model.causal,
        source=model.source,
    )


def build_attention_graph(model: ModelSpec, cfg: Config) -> AttnGraph:
    g = AttnGraph(graph_info(model, cfg), frozenset({"dense"}))
    for layer in range(model.num_layers):
        _build_layer(g, layer)
    g.retype()
    return g


def _build_layer(g: AttnGraph, layer: int) -> None:
    info = g.info
    d = info.head_dim
    queries = query_rows(info)
    keys = info.context
    base = f"{info.source}/layer{layer}"
    for kv in range(info.num_kv_heads):
        where = f"{base}/kv_head{kv}"
        g.add_node(
            f"l{layer}.kv{kv}.load_k",
            LoadK(layer=layer, kv_head=kv, tokens=keys, head_dim=d),
            where,
        )
        g.add_node(
            f"l{layer}.kv{kv}.load_v",
            LoadV(layer=layer, kv_head=kv, tokens=keys, head_dim=d),
            where,
        )
    outputs = []
    for head in range(info.num_heads):
        kv = head // info.group_size
        where = f"{base}/head{head}"
        p = f"l{layer}.h{head}"
        g.add_node(f"{p}.load_q", LoadQ(layer=layer, head=head, tokens=queries, head_dim=d), where)
        g.add_node(f"{p}.qk", MatMulQK(layer=layer, head=head, kv_head=kv), where)
        g.add_edge(f"{p}.load_q", f"{p}.qk", 0)
        g.add_edge(f"l{layer}.kv{kv}.load_k", f"{p}.qk", 1)
        g.add_node(f"{p}.scale", Scale(layer=layer, head=head, factor=1.0 / math.sqrt(d)), where)
        g.add_edge(f"{p}.qk", f"{p}.scale", 0)
        last = f"{p}.scale"
        if info.causal and info.stage == "summarization":
            g.add_node(f"{p}.mask", CausalMask(layer=layer, head=head, q_offset=0), where)
            g.add_edge(last, f"{p}.mask", 0)
            last = f"{p}.mask"
        g.add_node(f"{p}.softmax", Softmax(layer=layer, head=head), where)
        g.add_edge(last, f"{p}.softmax", 0)
        g.add_node(f"{p}.pv", MatMulPV(layer=layer, head=head, kv_head=kv), where)
        g.add_edge(f"{p}.softmax", f"{p}.pv", 0)
        g.add_edge(f"l{layer}.kv{kv}.load_v", f"{p}.pv", 1)
        outputs.append(f"{p}.pv")
    concat = f"l{layer}.concat"
    g.add_node(concat, HeadConcat(layer=layer, heads=tuple(range(info.num_heads))), base)
    for port, src in enumerate(outputs):
        g.add_edge(src, concat, port)


def check_against_model(cfg: Config, model: ModelSpec) -> None:
    """Checks that need the model: sequence length, per-layer list lengths, head dimension."""
    src = cfg.source
    context = cfg.model.seq_len
    if cfg.model.stage == "generation":
        if not model.causal:
            raise ConfigError(
                f"{src}: 'model.stage' = \"generation\" needs a decoder, but {model.name} "
                f"({model.family}) is an encoder"
            )
        context += cfg.model.gen_tokens
    if context > model.max_positions:
        what = (
            "'model.seq_len' + 'model.gen_tokens'"
            if cfg.model.stage == "generation"
            else "'model.seq_len'"
        )
        raise ConfigError(
            f"{src}: {what} = {context} exceeds {model.name}'s maximum of "
            f"{model.max_positions} positions"
        )
    if cfg.token_pruning.policy == "per-layer" and not model.causal:
        raise ConfigError(
            f"{src}: 'token_pruning.policy' = \"per-layer\" keeps a KV cache per layer and "
            f"needs a decoder, but {model.name} ({model.family}) is an encoder (an encoder's "
            f'layer scores its own attention with "current")'
        )
    if cfg.model.pooling_pruned != "drop" and model.causal:
        raise ConfigError(
            f"{src}: 'model.pooling_pruned' = \"{cfg.model.pooling_pruned}\" is how an "
            f"encoder's mean pool treats pruned tokens, but {model.name} ({model.family}) is "
            f"a decoder"
        )
    if cfg.token_pruning.granularity == "kv_head" and not model.causal:
        raise ConfigError(
            f"{src}: 'token_pruning.granularity' = \"kv_head\" keeps a KV cache per KV head "
            f"and needs a decoder, but {model.name} ({model.family}) is an encoder"
        )
    for section_name in ("token_pruning", "head_pruning"):
        per_layer = getattr(cfg, section_name).keep_per_layer
        if per_layer is not None and len(per_layer) != model.num_layers:
            raise ConfigError(
                f"{src}: '{section_name}.keep_per_layer' has {len(per_layer)} entries but "
                f"{model.name} has {model.num_layers} layers"
            )
