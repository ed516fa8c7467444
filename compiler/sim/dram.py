"""DRAM traffic accounting: bytes the engines actually fetch, and the dense 12-bit baseline."""

from __future__ import annotations

from dataclasses import dataclass

from spatten_hls.compiler.ir.graph import GraphInfo

BASELINE_BITS = 12  # SpAtten's on-chip width: the dense design fetches 12-bit Q, K and V


def row_bytes(bits: int, head_dim: int) -> int:
    """One head's vector of `head_dim` codes, packed at `bits` bits, in whole bytes."""
    return -(-bits * head_dim // 8)


@dataclass
class DramCounter:
    q: int = 0
    k_msb: int = 0
    k_lsb: int = 0
    v: int = 0

    def add(self, other: DramCounter) -> None:
        self.q += other.q
        self.k_msb += other.k_msb
        self.k_lsb += other.k_lsb
        self.v += other.v

    @property
    def total(self) -> int:
        return self.q + self.k_msb + self.k_lsb + self.v

    def as_dict(self) -> dict[str, int]:
        return {
            "q": self.q,
            "k_msb": self.k_msb,
            "k_lsb": self.k_lsb,
            "v": self.v,
            "total": self.total,
        }


def dense_baseline_bytes(info: GraphInfo, row: int) -> int:
    """What an unpruned design reads for the same workload, `row` bytes per row of codes
    (12-bit Q, K and V in the dense 12-bit baseline).

    Summarization: every query row once per head, every K and V row once per KV head per
    layer (kept on chip and reused across queries). Generation: per step, the new query row
    per head and the whole KV cache per KV head (no reuse across steps).
    """
    if info.stage == "summarization":
        rows = info.num_heads * info.seq_len + 2 * info.num_kv_heads * info.seq_len
        return info.num_layers * rows * row
    total = 0
    for step in range(info.gen_tokens):
        cache = info.seq_len + step + 1
        total += info.num_heads + 2 * info.num_kv_heads * cache
    return info.num_layers * total * row
