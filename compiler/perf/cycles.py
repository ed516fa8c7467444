"""Per-layer cycle model of the SpAtten datapath, from the hardware plan and the simulator's
records of what each layer did at each step.

Engines and their rates come from the plan (`lower-to-engines`):

* Q·K: `plan.qk.keys_per_cycle` keys a cycle (half of `hardware.multipliers` over the model's
  head_dim: 8 at 1024 multipliers and D = 64, 16 at D = 32), so `pairs / keys_per_cycle`.
* softmax: `plan.softmax.lanes` scores a cycle (matched to Q·K).
* local-V top-k (only with value pruning): quick-select over each (query, head) row. With a
  random pivot the rounds touch about 2n elements in total (n + n/2 + ...), so it costs
  `2 n / comparators` cycles; per-round overhead is hidden by the ping-pong FIFOs. At 16
  comparators it matches the Q·K output rate (the paper's reason for choosing 16).
* prob·V: `plan.pv.keys_per_cycle` V rows a cycle: `values / keys_per_cycle`.
* requantization: a recomputed row passes Q·K and softmax again: `requant_fraction` of the
  Q·K (= softmax) cycles extra on the critical path.
* token/head top-k: the simulator's top-k cycles (quick-select with the plan's comparators).

Pipelining (SpAtten §IV-A): fetch -> Q·K -> softmax -> local-V top-k -> prob·V are fully
pipelined, and token/head top-k plus importance accumulation run in parallel with them, so

    compute = max(QK + requant, softmax + requant, V top-k, PV, token/head top-k)
              + the non-overlapped part,

where the non-overlapped part (our decision) is pipeline fill/drain: `HEAD_FILL` cycles once
per layer invocation (the pipeline streams from one head's rows into the next without
draining; a decode step is one invocation) plus `ROW_GAP` cycles per (query row, head) for the
softmax row hand-off (max/sum of a row before its normalization).

DRAM: each plane's rows travel bit-packed in whole beats (`plan.fetcher.*_beats` of
`burst_bits`), so a 48-byte 6-bit row costs 64 bytes of bandwidth; time = effective bytes /
(DRAM_EFFICIENCY * peak bytes per cycle of the plan's target). DRAM_EFFICIENCY = 0.8 is an
assumption (not from the paper, whose Ramulator efficiency is unpublished): after pruning
the fetched rows are scattered 32-64 byte reads with row-buffer misses, which sustain well
below peak; pass `dram_efficiency` to change it. Bytes per layer and step are the
simulator's own counts. A layer's latency is max(compute, DRAM) (double-buffered fetch
overlaps compute); `bound` says which one.
"""

from __future__ import annotations

from dataclasses import dataclass

from spatten_hls.compiler.ir.plan import HardwarePlan
from spatten_hls.compiler.sim.dram import row_bytes
from spatten_hls.compiler.sim.result import PLANES, SimResult, StepRecord

HEAD_FILL = 24  # cycles: adder tree log2(64) = 6 + softmax exp/divide ~10 + top-k/PV ~8
ROW_GAP = 2  # cycles per (query row, head): softmax row hand-off
DRAM_EFFICIENCY = 0.8  # sustained fraction of peak HBM bandwidth (assumption, see above)


@dataclass
class LayerWork:
    """What one layer did, summed over its steps (the simulator's records)."""

    layer: int
    steps: int
    heads: int  # live query heads (last step)
    kv_heads: int  # live KV heads (last step)
    query_rows: int  # (query row, head) pairs over steps
    pairs: int  # (query, visible key, head) triples = Q·K dot products
    key_rows: int  # visible keys per step, summed over steps
    values: int  # V rows multiplied
    requant_fraction: float
    topk_cycles: int
    dram_bytes: dict[str, int]  # per plane, and "total"


@dataclass
class LayerCycles:
    layer: int
    qk: float
    softmax: float
    requant: float
    value_topk: float
    pv: float
    topk: float
    fill: float
    compute: float
    dram_bytes: dict[str, int]
    dram_effective_bytes: float
    dram: float
    latency: float
    bound: str  # "compute" | "memory"


def layer_work(result: SimResult) -> list[LayerWork]:
    return [_work(r.layer, result.layer_steps(r.layer)) for r in result.layers]


def _work(layer: int, steps: list[StepRecord]) -> LayerWork:
    last = steps[-1] if steps else None
    prob_rows = sum(s.prob_rows for s in steps)
    dram = {p: sum(s.dram_bytes[p] for s in steps) for p in PLANES}
    dram["total"] = sum(dram.values())
    return LayerWork(
        layer=layer,
        steps=len(steps),
        heads=last.heads if last else 0,
        kv_heads=last.kv_heads if last else 0,
        query_rows=sum(s.query_rows * s.heads for s in steps),
        pairs=sum(s.pairs for s in steps),
        key_rows=sum(s.keys for s in steps),
        values=sum(s.values for s in steps),
        requant_fraction=sum(s.requant_rows for s in steps) / prob_rows if prob_rows else 0.0,
        topk_cycles=sum(s.topk_cycles or 0 for s in steps),
        dram_bytes=dram,
    )


def effective_bytes(dram_bytes: dict[str, int], plan: HardwarePlan, head_dim: int) -> float:
    """Bytes of bandwidth used: every row moved in whole beats."""
    fetcher, bits = plan.fetcher, plan.bits
    widths = {
        "q": (bits.q, fetcher.q_beats),
        "k_msb": (bits.k_msb, fetcher.k_msb_beats),
        "k_lsb": (bits.k_lsb, fetcher.k_lsb_beats),
        "v": (bits.v, fetcher.v_beats),
    }
    total = 0.0
    for plane, (width, beats) in widths.items():
        packed = row_bytes(width, head_dim)
        if packed and dram_bytes.get(plane, 0):
            total += dram_bytes[plane] / packed * beats * fetcher.burst_bits // 8
    return total


def layer_cycles(
    w: LayerWork, plan: HardwarePlan, head_dim: int, dram_efficiency: float = DRAM_EFFICIENCY
) -> LayerCycles:
    qk = w.pairs / plan.qk.keys_per_cycle
    softmax = w.pairs / plan.softmax.lanes
    requant = w.requant_fraction * qk
    value_topk = 2.0 * w.pairs / plan.value_topk.comparators if plan.value_topk.enabled else 0.0
    pv = w.values / plan.pv.keys_per_cycle
    fill = HEAD_FILL * w.steps + ROW_GAP * w.query_rows
    compute = max(qk + requant, softmax + requant, value_topk, pv, float(w.topk_cycles)) + fill
    eff = effective_bytes(w.dram_bytes, plan, head_dim)
    dram = eff / (dram_efficiency * plan.target.bytes_per_cycle)
    bound = "memory" if dram > compute else "compute"
    return LayerCycles(
        w.layer,
        qk,
        softmax,
        requant,
        value_topk,
        pv,
        float(w.topk_cycles),
        float(fill),
        compute,
        w.dram_bytes,
        eff,
        dram,
        max(compute, dram),
        bound,
    )


def all_layer_cycles(
    result: SimResult, plan: HardwarePlan, dram_efficiency: float = DRAM_EFFICIENCY
) -> tuple[list[LayerWork], list[LayerCycles]]:
    work = layer_work(result)
    return work, [layer_cycles(w, plan, result.info.head_dim, dram_efficiency) for w in work]


def dense_fp16_bytes(result: SimResult) -> int:
    """The dense baseline's access pattern with 16-bit Q, K and V."""
    d = result.info.head_dim
    return result.dense_dram_bytes // row_bytes(12, d) * row_bytes(16, d)
