"""Split K into MSB and LSB planes and insert the progressive-quantization decision."""

from __future__ import annotations

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops import LoadK, MatMulQK, Scale, Softmax
from spatten_hls.compiler.ir.ops_spatten import LoadKLsb, LoadKMsb, Requant, TokenImportance
from spatten_hls.compiler.passes.registry import register_pass
from spatten_hls.compiler.passes.rewrite import insert_between, nodes_by_layer, origin_of

NAME = "split-progressive-quant"


@register_pass(NAME, requires={"typed"}, provides={"k-planes"})
def split_progressive_quant(g: AttnGraph, cfg: Config) -> AttnGraph:
    """SpAtten progressive quantization (paper section III-D).

    Precondition: a typed graph whose load_k nodes fetch full K codes.
    Effect (only with `quantization.progressive = true`): each load_k becomes load_k_msb
    (the `k_msb_bits` MSB plane, widened on chip as msb << k_lsb_bits) and load_k_lsb (the
    `k_lsb_bits` LSB plane); Q·K reads the MSB plane; after each softmax a requant node
    recomputes, once and with the full K, every row whose max probability is below
    `requant_threshold`. Without `progressive` the graph is unchanged.
    Postcondition: no load_k remains when progressive; every softmax feeds a requant.
    """
    q = cfg.quantization
    if not q.progressive:
        return g
    for node in [n for nodes in nodes_by_layer(g, LoadK).values() for n in nodes]:
        _split_load(g, node, q.k_msb_bits, q.k_lsb_bits)
    for nodes in nodes_by_layer(g, Softmax).values():
        for softmax in nodes:
            _insert_requant(g, softmax, q.requant_threshold)
    g.retype()
    return g


def _split_load(g: AttnGraph, node: str, msb_bits: int, lsb_bits: int) -> None:
    op: LoadK = g.op(node)
    origin = origin_of(g, node, NAME)
    base = node.removesuffix(".load_k")
    common = dict(
        layer=op.layer, kv_head=op.kv_head, tokens=op.tokens, head_dim=op.head_dim, gates=op.gates
    )
    msb = g.add_node(
        f"{base}.load_k_msb", LoadKMsb(bits=msb_bits, lsb_bits=lsb_bits, **common), origin
    )
    lsb = g.add_node(f"{base}.load_k_lsb", LoadKLsb(bits=lsb_bits, **common), origin)
    for src, _, data in list(g.nx_graph.in_edges(node, data=True)):  # gates
        g.add_edge(src, msb, data["port"])
        g.add_edge(src, lsb, data["port"])
    for _, user, data in list(g.nx_graph.out_edges(node, data=True)):
        g.add_edge(msb, user, data["port"])
    g.nx_graph.remove_node(node)


def _insert_requant(g: AttnGraph, softmax: str, threshold: float) -> None:
    head_prefix = softmax.removesuffix(".softmax")
    qk = f"{head_prefix}.qk"
    q_load, k_msb = g.operands(qk)
    qk_op: MatMulQK = g.op(qk)
    scale: Scale = g.op(f"{head_prefix}.scale")
    k_lsb = k_msb.removesuffix("_msb") + "_lsb"
    causal = f"{head_prefix}.mask" in g
    requant = Requant(
        layer=qk_op.layer,
        head=qk_op.head,
        kv_head=qk_op.kv_head,
        threshold=threshold,
        factor=scale.factor,
        causal=causal,
    )
    users = g.users(softmax)
    # token importance (when token pruning ran first) must read the final probabilities too
    readers = [u for u in users if isinstance(g.op(u), TokenImportance)]
    path = [u for u in users if u not in readers]
    assert len(path) == 1, f"{softmax} feeds {users}, expected one path to matmul_pv"
    node = f"{head_prefix}.requant"
    insert_between(g, softmax, path[0], node, requant, origin_of(g, softmax, NAME))
    for reader in readers:
        port = g.nx_graph.edges[softmax, reader]["port"]
        g.nx_graph.remove_edge(softmax, reader)
        g.add_edge(node, reader, port)
    g.add_edge(q_load, node, 1)
    g.add_edge(k_msb, node, 2)
    g.add_edge(k_lsb, node, 3)
