"""Per-layer cycle model of the SpAtten datapath, from a simulation's per-layer records.

Engines and their rates (the paper's Table I with 1024 multipliers, D = 64, as the reference):

* Q·K: `multipliers / 2` multipliers, one key of `head_dim` MACs per `head_dim` multipliers,
  so `keys_per_cycle = (multipliers / 2) / head_dim` (8 at 1024, D = 64).
* softmax: the same rate as Q·K (the paper's softmax parallelism 8 = 512 / 64).
* local-V top-k (only with value pruning): quick-select over each (query, head) row. With a
  random pivot the rounds touch about 2n elements in total (n + n/2 + ...), so it costs
  `2 n / topk_parallelism` cycles; per-round overhead is hidden by the ping-pong FIFOs. The
  simulator does not report these cycles, so this one is analytical. At P = 16 it matches
  the Q·K output rate (the paper's reason for choosing 16).
* prob·V: `multipliers / 2` multipliers: `values_fetched * head_dim / (multipliers / 2)`.
* requantization: a recomputed row passes Q·K and softmax again: `requant_fraction` of the
  Q·K (= softmax) cycles extra on the critical path.
* token/head top-k: the simulator's `topk_cycles` (quick-select with its cycle model).

Pipelining (SpAtten §IV-A): fetch -> Q·K -> softmax -> local-V top-k -> prob·V are fully
pipelined, and token/head top-k plus importance accumulation run in parallel with them, so

    compute = max(QK + requant, softmax + requant, V top-k, PV, token/head top-k)
              + the non-overlapped part,

where the non-overlapped part (our decision) is pipeline fill/drain: `HEAD_FILL` cycles once
per layer invocation (heads run one after another, with no inter-head parallelism, but the
pipeline streams from one head's rows into the next without draining; a decode step is one
invocation) plus `ROW_GAP` cycles per (query row, head) for the softmax row hand-off (max/sum
of a row before its normalization).

DRAM: a fetched row of `head_dim` codes is moved in whole AXI beats of `AXI_BEAT_BYTES`
(the RTL's 256-bit data bus), so a 48-byte 6-bit row costs 64 bytes of bandwidth; time =
effective bytes / (DRAM_EFFICIENCY * hbm_channels * hbm_gbps GB/s), in cycles at clock_mhz.
DRAM_EFFICIENCY = 0.8 is an assumption (not from the paper, whose Ramulator efficiency is
unpublished): after pruning the fetched rows are scattered 32-64 byte reads with row-buffer
misses, which sustain well below peak; pass `dram_efficiency` to change it. Per-layer bytes
apportion the simulator's exact per-stream totals by each layer's modeled share (the
simulator only reports totals). A layer's latency is max(compute, DRAM) (double-buffered
fetch overlaps compute); `bound` says which one.

Generation: the records hold the last step's `tokens_in` and the sums over steps of
`values_fetched` and `topk_cycles`. Token pruning keeps absolute counts, so the keys a layer
sees at step s are taken as min(prompt + s + 1, tokens_in of the last step) (exact for
layers before the first pruning layer, and within one token elsewhere after the first step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spatten_hls.compiler.config import Config
from spatten_hls.compiler.sim.dram import row_bytes
from spatten_hls.compiler.sim.result import LayerRecord, SimResult

HEAD_FILL = 24  # cycles: adder tree log2(64) = 6 + softmax exp/divide ~10 + top-k/PV ~8
ROW_GAP = 2  # cycles per (query row, head): softmax row hand-off
AXI_BEAT_BYTES = 32  # 256-bit AXI data bus of the fetcher
DRAM_EFFICIENCY = 0.8  # sustained fraction of peak HBM bandwidth (assumption, see above)
STREAMS = ("q", "k_msb", "k_lsb", "v")


@dataclass
class LayerWork:
    """What one layer did, summed over steps (from the records and the graph info)."""

    layer: int
    steps: int
    heads: int  # query heads computed (last step)
    kv_heads: int
    query_rows: int  # sum over steps of query rows (per head)
    scores: int  # sum of (query row, visible key, head) triples = Q·K dot products
    key_rows: int  # sum over steps of visible keys (per head) fetched
    values: int  # V rows multiplied (values_fetched)
    requant_fraction: float
    topk_cycles: int


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
    info = result.info
    out = []
    for r in result.layers:
        heads = r.heads_in or info.num_heads
        kv = max(1, -(-heads * info.num_kv_heads // info.num_heads))
        if info.stage == "summarization":
            n = r.tokens_in
            scores_per_head = n * (n + 1) // 2 if info.causal else n * n
            out.append(
                LayerWork(
                    r.layer,
                    1,
                    heads,
                    kv,
                    n,
                    scores_per_head * heads,
                    n,
                    r.values_fetched,
                    r.requant_fraction,
                    r.topk_cycles,
                )
            )
        else:
            keys = sum(
                min(info.seq_len + s + 1, max(r.tokens_in, 1)) for s in range(info.gen_tokens)
            )
            out.append(
                LayerWork(
                    r.layer,
                    info.gen_tokens,
                    heads,
                    kv,
                    info.gen_tokens,
                    keys * heads,
                    keys,
                    r.values_fetched,
                    r.requant_fraction,
                    r.topk_cycles,
                )
            )
    return out


def _stream_weights(w: LayerWork, cfg: Config, summarization: bool) -> dict[str, float]:
    d = cfg.hardware.head_dim
    q = cfg.quantization
    k_rows = w.key_rows * w.kv_heads
    return {
        "q": w.query_rows * w.heads * row_bytes(q.q_bits, d),
        "k_msb": k_rows * row_bytes(q.k_msb_bits, d),
        "k_lsb": k_rows
        * row_bytes(q.k_lsb_bits, d)
        * (1.0 if not q.progressive else w.requant_fraction),
        # summarization keeps V on chip: at most the visible rows once per KV head
        "v": min(w.values, k_rows) if summarization else w.values,
    }


def layer_dram_bytes(result: SimResult, cfg: Config, work: list[LayerWork]) -> list[dict]:
    """The simulator's exact per-stream totals apportioned to layers by modeled share."""
    summ = result.info.stage == "summarization"
    weights = [_stream_weights(w, cfg, summ) for w in work]
    out: list[dict[str, int]] = [{} for _ in work]
    for s in STREAMS:
        total = int(result.dram_bytes.get(s, 0))
        wsum = sum(w[s] for w in weights)
        shares = [w[s] / wsum for w in weights] if wsum > 0 else [1.0 / len(work)] * len(work)
        acc = 0
        for i, share in enumerate(shares):
            b = total - acc if i == len(work) - 1 else round(total * share)
            out[i][s] = b
            acc += b
    for b in out:
        b["total"] = sum(b[s] for s in STREAMS)
    return out


def _bits(cfg: Config, stream: str) -> int:
    q = cfg.quantization
    return {"q": q.q_bits, "k_msb": q.k_msb_bits, "k_lsb": q.k_lsb_bits, "v": q.v_bits}[stream]


def effective_bytes(b: dict[str, int], cfg: Config) -> float:
    """Bytes of bandwidth used: every row rounded up to whole AXI beats."""
    d = cfg.hardware.head_dim
    total = 0.0
    for s in STREAMS:
        rb = row_bytes(_bits(cfg, s), d)
        if rb == 0 or b.get(s, 0) == 0:
            continue
        total += b[s] / rb * (math.ceil(rb / AXI_BEAT_BYTES) * AXI_BEAT_BYTES)
    return total


def bytes_per_cycle(cfg: Config) -> float:
    hw = cfg.hardware
    return hw.hbm_channels * hw.hbm_gbps * 1e9 / (hw.clock_mhz * 1e6)


def keys_per_cycle(cfg: Config) -> float:
    hw = cfg.hardware
    return (hw.multipliers / 2) / hw.head_dim


def layer_cycles(
    w: LayerWork, dram_bytes: dict[str, int], cfg: Config, dram_efficiency: float = DRAM_EFFICIENCY
) -> LayerCycles:
    hw = cfg.hardware
    kpc = keys_per_cycle(cfg)
    qk = w.scores / kpc
    softmax = w.scores / kpc
    requant = w.requant_fraction * qk
    value_topk = 2.0 * w.scores / hw.topk_parallelism if cfg.value_pruning.enabled else 0.0
    pv = w.values * hw.head_dim / (hw.multipliers / 2)
    fill = HEAD_FILL * w.steps + ROW_GAP * w.query_rows * w.heads
    compute = max(qk + requant, softmax + requant, value_topk, pv, float(w.topk_cycles)) + fill
    eff = effective_bytes(dram_bytes, cfg)
    dram = eff / (dram_efficiency * bytes_per_cycle(cfg))
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
        dram_bytes,
        eff,
        dram,
        max(compute, dram),
        bound,
    )


def all_layer_cycles(
    result: SimResult, cfg: Config, dram_efficiency: float = DRAM_EFFICIENCY
) -> tuple[list[LayerWork], list[LayerCycles]]:
    work = layer_work(result)
    dram = layer_dram_bytes(result, cfg, work)
    return work, [layer_cycles(w, b, cfg, dram_efficiency) for w, b in zip(work, dram, strict=True)]


def dense_fp16_bytes(result: SimResult) -> int:
    """The dense baseline's access pattern with 16-bit Q, K and V."""
    d = result.info.head_dim
    return result.dense_dram_bytes // row_bytes(12, d) * row_bytes(16, d)


__all__ = [
    "LayerCycles",
    "LayerRecord",
    "LayerWork",
    "all_layer_cycles",
    "bytes_per_cycle",
    "dense_fp16_bytes",
    "keys_per_cycle",
    "layer_cycles",
    "layer_work",
]
