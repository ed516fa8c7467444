"""The code widths of a typed graph, read off its loads (the one place they are read)."""

from __future__ import annotations

from spatten_hls.compiler.errors import IRVerificationError
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops import LoadK, LoadQ, LoadV
from spatten_hls.compiler.ir.ops_spatten import LoadKLsb, LoadKMsb
from spatten_hls.compiler.ir.plan import BitWidths


def bit_widths(g: AttnGraph) -> BitWidths:
    """Q, K MSB / LSB and V widths of every load (they must agree across layers and heads).

    Without progressive quantization K is one load of `bits`, stored as planes of `msb_bits`
    and the rest; with it K is a `load_k_msb` and a `load_k_lsb`.
    """
    seen: dict[str, set[int]] = {"q": set(), "k_msb": set(), "k_lsb": set(), "v": set()}
    progressive = False
    for node in g.nx_graph.nodes:
        op = g.op(node)
        if isinstance(op, LoadQ):
            seen["q"].add(op.bits)
        elif isinstance(op, LoadV):
            seen["v"].add(op.bits)
        elif isinstance(op, LoadK):
            seen["k_msb"].add(op.msb_bits)
            seen["k_lsb"].add(op.bits - op.msb_bits)
        elif isinstance(op, LoadKMsb):
            seen["k_msb"].add(op.bits)
        elif isinstance(op, LoadKLsb):
            seen["k_lsb"].add(op.bits)
            progressive = True
    widths = {}
    for plane, values in seen.items():
        if len(values) != 1 or None in values:
            raise IRVerificationError(
                f"the {plane} loads carry widths {sorted(values, key=str)}"
                f"; a typed graph has one width per plane"
            )
        widths[plane] = values.pop()
    return BitWidths(**widths, progressive=progressive)
