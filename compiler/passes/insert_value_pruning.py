"""Local value pruning: per query and head, multiply only the largest probabilities' V rows."""

from __future__ import annotations

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops import MatMulPV
from spatten_hls.compiler.ir.ops_spatten import ValueTopK
from spatten_hls.compiler.passes.registry import register_pass
from spatten_hls.compiler.passes.rewrite import insert_between, nodes_by_layer, origin_of

NAME = "insert-value-pruning"


@register_pass(NAME, requires={"typed"}, provides={"value-pruned"})
def insert_value_pruning(g: AttnGraph, cfg: Config) -> AttnGraph:
    """SpAtten local value pruning (paper section III-C).

    Precondition: a typed graph.
    Effect (only with `value_pruning.enabled`): a value_topk node sits in front of every
    matmul_pv's probability operand. Per query row it keeps the floor(keep * visible keys)
    largest probabilities (at least one; ties to the lower key index) and zeroes the rest
    without renormalizing; only the kept rows of V are fetched and multiplied. Token
    importance still sees the full probabilities (it reads them before this node).
    Postcondition: every matmul_pv reads a value_topk.
    """
    v = cfg.value_pruning
    if not v.enabled:
        return g
    for nodes in nodes_by_layer(g, MatMulPV).values():
        for pv in nodes:
            op: MatMulPV = g.op(pv)
            probs = g.operands(pv)[0]
            node = pv.removesuffix(".pv") + ".value_topk"
            insert_between(
                g,
                probs,
                pv,
                node,
                ValueTopK(layer=op.layer, head=op.head, keep=v.keep),
                origin_of(g, pv, NAME),
            )
    g.retype()
    return g
