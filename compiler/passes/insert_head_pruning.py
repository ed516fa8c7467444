"""Cascade head pruning: accumulate head importance, select the top-k heads after layers."""

from __future__ import annotations

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops_spatten import HeadImportance, HeadSelect
from spatten_hls.compiler.passes.registry import register_pass
from spatten_hls.compiler.passes.rewrite import Cascade, insert_cascade, pv_node
from spatten_hls.compiler.passes.schedule import keep_counts, keep_fractions

NAME = "insert-head-pruning"


def head_keep_counts(g: AttnGraph, cfg: Config) -> list[int]:
    h = cfg.head_pruning
    fractions = keep_fractions(g.info.num_layers, h.keep, h.skip_first, h.keep_per_layer)
    return keep_counts(g.info.num_heads, fractions)


@register_pass(NAME, requires={"typed"}, provides={"head-pruned"})
def insert_head_pruning(g: AttnGraph, cfg: Config) -> AttnGraph:
    """SpAtten cascade head pruning (paper section III-B).

    Precondition: a typed graph.
    Effect (only with `head_pruning.enabled`): every layer gets a head_importance node adding
    sum |attention output| of each head (output codes weighted by the head's V scale) to the
    importance carried from earlier layers and steps; each layer whose keep count is below
    the head count gets a head_select, run once after all heads of the layer. Pruned *query*
    heads are skipped in every later layer: their Q is not fetched and their output is zero.
    Under grouped-query attention a KV head's K and V are fetched while any query head of its
    group is alive (the loads are gated by the mask too), so DRAM savings on K/V come only
    when whole groups die.
    Postcondition: head counts are non-increasing across layers.
    """
    h = cfg.head_pruning
    if not h.enabled:
        return g
    counts = head_keep_counts(g, cfg)
    insert_cascade(
        g,
        Cascade(
            pass_name=NAME,
            kind="head",
            gate="heads",
            prunes=[count < g.info.num_heads for count in counts],
            importance=lambda layer, heads, chained: HeadImportance(
                layer=layer, heads=heads, num_heads=g.info.num_heads, chained=chained
            ),
            select=lambda layer: HeadSelect(layer=layer, keep=counts[layer]),
            source=lambda layer, head: pv_node(g, layer, head),
        ),
    )
    g.retype()
    return g
