"""Fit the keys onto the on-chip K/V buffers and plan the fetcher: the first part of the plan."""

from __future__ import annotations

import math

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.plan import (
    BURST_BITS,
    FETCH_LATENCY,
    FetcherPlan,
    HardwarePlan,
    row_beats,
)
from spatten_hls.compiler.ir.widths import bit_widths
from spatten_hls.compiler.passes.registry import register_pass

NAME = "tile"


@register_pass(NAME, requires={"typed"}, provides={"tiled"})
def tile(g: AttnGraph, cfg: Config) -> AttnGraph:
    """Tile the key dimension to `hardware.max_tokens` rows per K/V buffer; plan the fetch.

    Precondition: a typed graph.
    Effect: `g.plan` is started with the bit widths (read off the loads), the stage and the
    fetcher: with one tile the keys of a KV head stay on chip for all its rows; with more, each
    query row walks the tiles (scores gather in a row buffer, so softmax, the requant decision
    and importance see whole rows, and prob·V accumulates tile by tile: bit-identical). Each
    plane's rows travel bit-packed in whole `BURST_BITS` beats. K and V fetches are lowered
    onto the `fetcher` engine.
    Postcondition: property `tiled`; ops and edges unchanged; `g.plan.fetcher` set.
    """
    info, bits, hw = g.info, bit_widths(g), cfg.hardware
    keys = info.context
    tile_tokens = min(keys, hw.max_tokens)
    d = info.head_dim
    # Half of the HBM pseudo-channels serve the K planes and half V, one read lane (m_axi
    # port) each; a lane moves a beat a cycle unless its channel is slower than the port.
    lanes = max(1, hw.hbm_channels // 2)
    port_bytes_per_s = BURST_BITS / 8 * hw.clock_mhz * 1e6
    fetcher = FetcherPlan(
        tile_tokens=tile_tokens,
        tiles=math.ceil(keys / tile_tokens),
        burst_bits=BURST_BITS,
        q_beats=row_beats(bits.q, d),
        k_msb_beats=row_beats(bits.k_msb, d),
        k_lsb_beats=row_beats(bits.k_lsb, d),
        v_beats=row_beats(bits.v, d),
        k_lanes=lanes,
        v_lanes=lanes,
        beat_millicycles=max(1000, math.ceil(1000 * port_bytes_per_s / (hw.hbm_gbps * 1e9))),
        latency=FETCH_LATENCY,
    )
    g.plan = HardwarePlan(stage=info.stage, bits=bits, fetcher=fetcher)
    for node in list(g.nx_graph.nodes):
        if g.op(node).KIND in ("load_k", "load_v", "load_k_msb", "load_k_lsb"):
            g.set_engine(node, "fetcher")
    return g
