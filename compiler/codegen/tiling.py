"""Tiling of the working set onto the on-chip K/V buffers (`[hardware] max_tokens`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from compiler.config import HardwareSection
from compiler.errors import CodegenError
from compiler.ir.graph import GraphInfo


@dataclass(frozen=True)
class TilePlan:
    """How keys map onto the K/V buffers: `key_tiles` tiles of `tile_tokens` rows each."""

    tile_tokens: int
    key_tiles: int
    kv_buffer_bits: int  # one K plus one V buffer (single-buffered) in bits


def plan_tiles(info: GraphInfo, hw: HardwareSection) -> TilePlan:
    keys = info.context
    tiles = math.ceil(keys / hw.max_tokens)
    if tiles > 1:
        raise CodegenError(
            f"the model attends over {keys} keys but 'hardware.max_tokens' = {hw.max_tokens}: "
            "key tiling (several buffer loads per row) is not generated yet; raise "
            "hardware.max_tokens to at least the context length"
        )
    tile = min(keys, hw.max_tokens)
    return TilePlan(tile_tokens=tile, key_tiles=tiles,
                    kv_buffer_bits=2 * tile * info.head_dim * 16)
