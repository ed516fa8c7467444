"""Fit the keys onto the on-chip K/V buffers: decide the key tiles of every K/V fetch."""

from __future__ import annotations

from spatten_hls.compiler.codegen.tiling import plan_tiles
from spatten_hls.compiler.config import Config
from spatten_hls.compiler.ir.graph import AttnGraph
from spatten_hls.compiler.ir.ops import LoadK, LoadV
from spatten_hls.compiler.ir.ops_spatten import LoadKLsb, LoadKMsb
from spatten_hls.compiler.passes.registry import register_pass

NAME = "tile"


@register_pass(NAME, requires={"typed"}, provides={"tiled"})
def tile(g: AttnGraph, cfg: Config) -> AttnGraph:
    """Tile the key dimension to `hardware.max_tokens` rows per K/V buffer.

    Precondition: a typed graph.
    Effect: every K and V fetch is annotated `fetcher[tile_tokens=T, tiles=N]`: with N = 1 the
    keys of a KV head stay on chip for all its rows; with N > 1 each query row walks the N
    tiles (scores gather in a row buffer, so softmax, the requant decision and importance see
    whole rows, and prob·V accumulates tile by tile: the result is bit-identical).
    Postcondition: property `tiled`; the graph's ops and edges are unchanged.
    """
    plan = plan_tiles(g.info, cfg.hardware)
    for node in list(g.nx_graph.nodes):
        if isinstance(g.op(node), LoadK | LoadV | LoadKMsb | LoadKLsb):
            g.set_engine(node, f"fetcher[tile_tokens={plan.tile_tokens}, tiles={plan.key_tiles}]")
    return g
