"""Tiling of the working set onto the on-chip K/V buffers (`[hardware] max_tokens`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from spatten_hls.compiler.config import HardwareSection
from spatten_hls.compiler.ir.graph import GraphInfo


@dataclass(frozen=True)
class TilePlan:
    """How keys map onto the K/V buffers: at most `key_tiles` tiles of `tile_tokens` rows.

    With one tile the visible K and V of a KV head stay on chip for all its query rows and
    heads. With more, each query row walks the tiles (refetching them): scores land in a row
    buffer of the full context, so softmax (max, exp sum, reciprocal), the requant decision
    (on the row's max probability), token importance and value top-k all see the whole row
    exactly as in the simulator; prob·V accumulates tile by tile (exact integer sums).
    """

    tile_tokens: int
    key_tiles: int
    kv_buffer_bits: int  # one K plus one V buffer (single-buffered) in bits


def plan_tiles(info: GraphInfo, hw: HardwareSection) -> TilePlan:
    keys = info.context
    tile = min(keys, hw.max_tokens)
    tiles = math.ceil(keys / tile)
    return TilePlan(tile_tokens=tile, key_tiles=tiles, kv_buffer_bits=2 * tile * info.head_dim * 16)
