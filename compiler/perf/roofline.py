"""Roofline quantities: useful ops (2 per MAC of Q·K and prob·V actually done, after
pruning; requantization recomputes are overhead, not counted), bytes, intensity, throughput,
and the machine's two roofs."""

from __future__ import annotations

from dataclasses import dataclass

from spatten_hls.compiler.ir.plan import HardwarePlan
from spatten_hls.compiler.perf.cycles import LayerCycles


def layer_ops(c: LayerCycles, head_dim: int) -> int:
    return 2 * head_dim * (c.pairs + c.values)


def dense_ops(info) -> int:
    """ops of the same workload with no pruning (every head, key and value): the
    dense-equivalent work behind "effective" throughput (as A3 / SpAtten Table III count)."""
    d, h = info.head_dim, info.num_heads
    if info.stage == "summarization":
        n = info.seq_len
        pairs = n * (n + 1) // 2 if info.causal else n * n
    else:
        pairs = sum(info.seq_len + s + 1 for s in range(info.gen_tokens))
    return info.num_layers * h * pairs * 2 * d * 2


@dataclass
class Roofline:
    ops: int
    bytes: int
    op_per_byte: float
    throughput_gops: float
    compute_roof_gops: float  # 2 ops per multiplier per cycle
    bandwidth_gbps: float
    ridge_op_per_byte: float

    @property
    def bound(self) -> str:
        """The roofline's verdict: below the ridge point the workload is memory-bound."""
        return "memory" if self.op_per_byte < self.ridge_op_per_byte else "compute"

    def as_dict(self) -> dict:
        doc = {
            k: (None if isinstance(v, float) and v == float("inf") else v)
            for k, v in self.__dict__.items()
        }
        return {**doc, "bound": self.bound}


def roofline(ops: int, nbytes: int, latency_s: float, plan: HardwarePlan) -> Roofline:
    target = plan.target
    roof = 2 * (plan.qk.multipliers + plan.pv.multipliers) * target.clock_mhz * 1e6 / 1e9
    bw = target.bytes_per_cycle * target.clock_mhz * 1e6 / 1e9
    return Roofline(
        ops,
        nbytes,
        ops / nbytes if nbytes else float("inf"),
        ops / latency_s / 1e9 if latency_s > 0 else 0.0,
        roof,
        bw,
        roof / bw,
    )
