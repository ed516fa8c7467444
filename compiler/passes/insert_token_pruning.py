"""Cascade token pruning: accumulate token importance, select the top-k after pruned layers."""

from __future__ import annotations

from compiler.config import Config
from compiler.ir.graph import AttnGraph
from compiler.ir.ops import _Load
from compiler.ir.ops_spatten import TokenImportance, TokenSelect
from compiler.passes.registry import register_pass
from compiler.passes.rewrite import add_gate, final_probs, heads_by_layer, nodes_by_layer
from compiler.passes.schedule import keep_counts, keep_fractions

NAME = "insert-token-pruning"


def token_keep_counts(g: AttnGraph, cfg: Config) -> list[int]:
    """Tokens kept after each layer: floor(L * keep_l), L the original sequence length
    (generation: the full context `seq_len + gen_tokens`, so counts stay constant across
    steps as in SpAtten's GPT-2 traces)."""
    t = cfg.token_pruning
    fractions = keep_fractions(g.info.num_layers, t.keep, t.skip_first, t.keep_per_layer)
    return keep_counts(g.info.context, fractions)


@register_pass(NAME, requires={"typed"}, provides={"token-pruned"})
def insert_token_pruning(g: AttnGraph, cfg: Config) -> AttnGraph:
    """SpAtten cascade token pruning (paper section III-A, Algorithm 2).

    Precondition: a typed graph; every head's probabilities reach its matmul_pv.
    Effect (only with `token_pruning.enabled`): every layer gets a token_importance node that
    adds the column sums of all its heads' probabilities to the importance carried from the
    previous layer (and, when generating, from earlier steps). Each layer whose keep count is
    below the full length gets a token_select keeping the `keep` most important tokens (plus
    `keep_first` / `keep_recent` protected ones; in generation also the step's own token);
    the K, V and Q loads of every later layer are gated by the latest token_select.
    Postcondition: selections keep non-increasing counts across layers.
    """
    t = cfg.token_pruning
    if not t.enabled:
        return g
    counts = token_keep_counts(g, cfg)
    heads = heads_by_layer(g)
    loads = nodes_by_layer(g, _Load)
    previous, latest_select = None, None
    for layer in range(g.info.num_layers):
        for load in loads.get(layer, []):
            if latest_select is not None:
                add_gate(g, load, "tokens", latest_select, NAME)
        imp = f"l{layer}.token_importance"
        origin = f"{g.info.source}/layer{layer} | {NAME}"
        g.add_node(imp, TokenImportance(layer=layer, heads=tuple(heads[layer]),
                                        chained=previous is not None), origin)
        for port, head in enumerate(heads[layer]):
            g.add_edge(final_probs(g, layer, head), imp, port)
        if previous is not None:
            g.add_edge(previous, imp, len(heads[layer]))
        previous = imp
        if counts[layer] < g.info.context:
            select = f"l{layer}.token_select"
            g.add_node(select, TokenSelect(layer=layer, keep=counts[layer],
                                           keep_first=t.keep_first, keep_recent=t.keep_recent),
                       origin)
            g.add_edge(imp, select, 0)
            latest_select = select
    g.retype()
    return g
