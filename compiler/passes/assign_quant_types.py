"""Assign fixed-point types from `[quantization]` to every load, then to every edge."""

from __future__ import annotations

import dataclasses

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops import LoadK, LoadQ, LoadV
from spatten_hls.compiler.passes.registry import register_pass


@register_pass("assign-quant-types", requires={"dense"}, provides={"typed"})
def assign_quant_types(g: AttnGraph, cfg: Config) -> AttnGraph:
    """Give Q, K and V loads their integer code widths and propagate formats downstream.

    Precondition: a front-end graph (loads without `bits`).
    Effect: load_q gets `q_bits`, load_k gets `k_msb_bits + k_lsb_bits` (the full K code,
    stored as an MSB plane of `k_msb_bits` and an LSB plane), load_v gets `v_bits`; every edge
    then gets the format its producer infers (accumulators wide enough never to wrap, scores
    and probabilities in the formats of docs/numerics.md).
    Postcondition: every edge has a fixed-point type (property `typed`).
    """
    q = cfg.quantization
    widths = {LoadQ: q.q_bits, LoadK: q.k_bits, LoadV: q.v_bits}
    for node in list(g.nodes()):
        op = g.op(node)
        bits = widths.get(type(op))
        if bits is None:
            continue
        extra = {"msb_bits": q.k_msb_bits} if isinstance(op, LoadK) else {}
        g.set_op(node, dataclasses.replace(op, bits=bits, **extra), "assign-quant-types")
    g.retype()
    return g
