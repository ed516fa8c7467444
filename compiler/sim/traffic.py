"""The DRAM traffic of the emitted design, from what a frame (one layer invocation) did.

The rules are those of the design's fetcher (engines/fetch.h) and row pipeline
(engines/layer.h, engines/rows.h), in one place:

* every row of codes moves in whole beats of its plane (`plan.fetcher.*_beats` x 32 bytes,
  coded_row_bytes); a graph without a plan counts bit-packed bytes instead;
* Q: one row per (query row, live head), and again for each row the requant decision deferred
  (the second pass refetches it);
* resident K (the invocation's visible keys fit the buffer, `plan.fetcher.tile_tokens`; a
  design of one tile always, a tiled one whenever pruning leaves few enough keys): the MSB
  plane of every visible key once per live KV head, the LSB plane too without progressive
  quantization; the second pass fetches both planes again for each KV head with a deferred
  row;
* streamed K (more visible keys than the buffer): every row fetches its visible keys' rows,
  so the MSB plane per (row, visible key), the LSB plane likewise without progressive
  quantization or in the second pass;
* V resident: each pass fetches a KV head's V rows on demand, each row once (the union of the
  rows its query rows keep); streamed: every row fetches the V rows it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatten_hls.compiler.ir.plan import BitWidths, FetcherPlan, HardwarePlan, row_beats
from spatten_hls.compiler.sim.dram import DramCounter, row_bytes
from spatten_hls.compiler.sim.frame import Frame


@dataclass(frozen=True)
class PortRows:
    """Bytes one row of each plane costs at the ports, and the fetcher that decides whether
    an invocation's keys stay on chip."""

    q: int
    k_msb: int
    k_lsb: int
    v: int
    fetcher: FetcherPlan | None  # None: no plan, every invocation resident
    progressive: bool

    def streamed(self, keys: int) -> bool:
        """Whether an invocation with `keys` visible keys walks them per row."""
        return self.fetcher is not None and not self.fetcher.resident(keys)

    @classmethod
    def of(cls, plan: HardwarePlan | None, bits: BitWidths, head_dim: int) -> PortRows:
        return cls(
            coded_row_bytes(plan, bits.q, head_dim),
            coded_row_bytes(plan, bits.k_msb, head_dim),
            coded_row_bytes(plan, bits.k_lsb, head_dim),
            coded_row_bytes(plan, bits.v, head_dim),
            None if plan is None else plan.fetcher,
            bits.progressive,
        )


def coded_row_bytes(plan: HardwarePlan | None, bits: int, head_dim: int) -> int:
    """Bytes one row of `head_dim` codes of `bits` costs at a port: whole m_axi beats in a
    planned design (also for the dense baselines, which move the same beats)."""
    if plan is None:
        return row_bytes(bits, head_dim)
    burst = plan.fetcher.burst_bits
    return row_beats(bits, head_dim, burst) * (burst // 8)


def frame_traffic(frame: Frame, rows: PortRows, group_size: int) -> DramCounter:
    """What the design reads for `frame` (see the module docstring)."""
    heads = np.flatnonzero(frame.heads_alive)
    kv_heads = {int(h) // group_size for h in heads}
    deferred = {h: r for h, r in frame.deferred.items() if len(r)}
    kv_deferred = {h // group_size for h in deferred}
    nk = len(frame.k_rows)
    first_rows = len(frame.q_rows) * len(heads)
    second_rows = sum(len(r) for r in deferred.values())
    lsb_first = 0 if rows.progressive else 1
    traffic = DramCounter(q=(first_rows + second_rows) * rows.q)
    if rows.streamed(nk):
        first_keys = int(frame.visible.sum()) * len(heads)
        second_keys = sum(int(frame.visible[r].sum()) for r in deferred.values())
        traffic.k_msb = (first_keys + second_keys) * rows.k_msb
        traffic.k_lsb = (lsb_first * first_keys + second_keys) * rows.k_lsb
        traffic.v = frame.values_fetched * rows.v
    else:
        traffic.k_msb = (len(kv_heads) + len(kv_deferred)) * nk * rows.k_msb
        traffic.k_lsb = (lsb_first * len(kv_heads) + len(kv_deferred)) * nk * rows.k_lsb
        traffic.v = sum(int(used.sum()) for used in frame.v_fetch.values()) * rows.v
    return traffic
