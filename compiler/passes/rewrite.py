"""Small graph-editing helpers shared by the SpAtten passes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from spatten_hls.compiler.ir.graph import AttnGraph, node_sort_key
from spatten_hls.compiler.ir.ops import LoadOp, MatMulPV, Op
from spatten_hls.compiler.ir.ops_spatten import ValueTopK


def pv_node(g: AttnGraph, layer: int, head: int) -> str:
    return f"l{layer}.h{head}.pv"


def final_probs(g: AttnGraph, layer: int, head: int) -> str:
    """The node whose probabilities reach prob·V (softmax, or requant), before value top-k."""
    node = g.operands(pv_node(g, layer, head))[0]
    while isinstance(g.op(node), ValueTopK):
        node = g.operands(node)[0]
    return node


def insert_between(g: AttnGraph, src: str, dst: str, node: str, op, origin: str) -> None:
    """Put `node` on the edge src -> dst (same port at dst); `node` reads src on port 0."""
    port = g.nx_graph.edges[src, dst]["port"]
    g.nx_graph.remove_edge(src, dst)
    g.add_node(node, op, origin)
    g.add_edge(src, node, 0)
    g.add_edge(node, dst, port)


def add_gate(g: AttnGraph, load: str, gate: str, src: str, pass_name: str) -> None:
    """Make `load` fetch only what the mask `src` keeps (appended as its next operand)."""
    op = g.op(load)
    assert isinstance(op, LoadOp) and gate not in op.gates
    g.set_op(load, dataclasses.replace(op, gates=(*op.gates, gate)), pass_name)
    g.add_edge(src, load, len(op.gates))


def nodes_by_layer(g: AttnGraph, kind: type) -> dict[int, list[str]]:
    """Nodes of one op kind grouped by layer, each list in natural id order."""
    out: dict[int, list[str]] = {}
    for node in sorted(g.nx_graph.nodes, key=node_sort_key):
        op = g.op(node)
        if isinstance(op, kind):
            out.setdefault(op.layer, []).append(node)
    return out


def heads_by_layer(g: AttnGraph) -> dict[int, list[int]]:
    """Query heads present (not removed) in each layer."""
    return {
        layer: [g.op(n).head for n in nodes] for layer, nodes in nodes_by_layer(g, MatMulPV).items()
    }


def origin_of(g: AttnGraph, node: str, pass_name: str) -> str:
    return f"{g.origin(node)} | {pass_name}"


@dataclass(frozen=True)
class Cascade:
    """What differs between token and head pruning (see `insert_cascade`)."""

    pass_name: str
    kind: str  # "token" | "head": node ids l{L}.{kind}_importance / l{L}.{kind}_select
    gate: str  # the load gate the selections drive: "tokens" | "heads"
    prunes: list[bool]  # per layer: a selection follows it
    importance: Callable[[int, tuple[int, ...], bool], Op]  # (layer, heads, chained) -> op
    select: Callable[[int], Op]  # layer -> op
    source: Callable[[int, int], str]  # (layer, head) -> the node importance reads
    chains_scores: bool = True  # False: each layer's accumulator stands alone
    gates_later: bool = True  # False: a selection acts on its own layer's KV cache, no gates


def insert_cascade(g: AttnGraph, c: Cascade) -> None:
    """Per layer an importance accumulator, chained to the previous layer's; a selection after
    layers that prune; every later layer's loads gated by the latest selection. Without
    `chains_scores` the accumulators stand alone; without `gates_later` the selections gate no
    loads: each acts on its own layer's KV cache in later steps (pruning state, not an edge)."""
    heads = heads_by_layer(g)
    loads = nodes_by_layer(g, LoadOp)
    previous, latest = None, None
    for layer in range(g.info.num_layers):
        for load in loads.get(layer, []):
            if latest is not None:
                add_gate(g, load, c.gate, latest, c.pass_name)
        origin = f"{g.info.source}/layer{layer} | {c.pass_name}"
        imp = g.add_node(
            f"l{layer}.{c.kind}_importance",
            c.importance(layer, tuple(heads[layer]), previous is not None),
            origin,
        )
        for port, head in enumerate(heads[layer]):
            g.add_edge(c.source(layer, head), imp, port)
        if previous is not None:
            g.add_edge(previous, imp, len(heads[layer]))
        if c.chains_scores:
            previous = imp
        if c.prunes[layer]:
            select = g.add_node(f"l{layer}.{c.kind}_select", c.select(layer), origin)
            g.add_edge(imp, select, 0)
            if c.gates_later:
                latest = select
