"""`performance_report(result, plan)`: per-layer rows and totals, JSON and a text table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spatten_hls.compiler.ir.plan import HardwarePlan
from spatten_hls.compiler.perf.cycles import all_layer_cycles
from spatten_hls.compiler.perf.resources import Resources, estimate_resources
from spatten_hls.compiler.perf.roofline import Roofline, dense_ops, layer_ops, roofline
from spatten_hls.compiler.sim.dram import BASELINE_BITS
from spatten_hls.compiler.sim.result import SimResult
from spatten_hls.compiler.sim.traffic import coded_row_bytes


@dataclass
class LayerRow:
    layer: int
    tokens: int
    kept_tokens: int
    heads: int
    heads_kept: int
    values: int
    requant_fraction: float
    ops: int
    dram_bytes: int
    cycles: dict[str, float]  # per engine
    compute_cycles: float
    dram_cycles: float
    latency_cycles: float
    bound: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "tokens": self.tokens,
            "kept_tokens": self.kept_tokens,
            "heads": self.heads,
            "heads_kept": self.heads_kept,
            "values": self.values,
            "requant_fraction": self.requant_fraction,
            "ops": self.ops,
            "dram_bytes": self.dram_bytes,
            "cycles": {k: round(v, 1) for k, v in self.cycles.items()},
            "compute_cycles": round(self.compute_cycles, 1),
            "dram_cycles": round(self.dram_cycles, 1),
            "latency_cycles": round(self.latency_cycles, 1),
            "bound": self.bound,
        }


@dataclass
class Report:
    model: str
    stage: str
    hardware: dict[str, Any]
    layers: list[LayerRow]
    latency_cycles: float
    latency_s: float
    throughput_gops: float
    bound: str
    dram_bytes: int
    dense_dram_bytes: int
    dense_fp16_dram_bytes: int
    dram_reduction: float
    dram_reduction_fp16: float
    roofline: Roofline
    resources: Resources
    effective_throughput_gops: float = 0.0  # dense-equivalent ops / latency
    assumptions: dict[str, Any] = field(default_factory=dict)
    config: str = "<defaults>"  # the configuration's file name
    head_dim: int = 0

    @property
    def fits(self) -> bool | None:
        return self.resources.fits

    def as_dict(self) -> dict[str, Any]:
        r = self.resources
        resources = r.as_dict()
        return {
            "model": self.model,
            "stage": self.stage,
            "hardware": self.hardware,
            "latency_cycles": round(self.latency_cycles, 1),
            "latency_s": self.latency_s,
            "throughput_gops": round(self.throughput_gops, 3),
            "effective_throughput_gops": round(self.effective_throughput_gops, 3),
            "bound": self.bound,
            "ops": self.roofline.ops,
            "dram_bytes": self.dram_bytes,
            "config": self.config,
            "dense_dram_bytes": self.dense_dram_bytes,
            "dense_fp16_dram_bytes": self.dense_fp16_dram_bytes,
            "dram_reduction": round(self.dram_reduction, 6),
            "dram_reduction_fp16": round(self.dram_reduction_fp16, 6),
            "roofline": self.roofline.as_dict(),
            "roofline_bound": self.roofline.bound,
            "resources": resources,
            "fits": r.fits,
            "layers": [row.as_dict() for row in self.layers],
            "assumptions": self.assumptions,
        }

    def to_text(self) -> str:
        hw = self.hardware
        streamed = f"{hw['qk_streamed_multipliers']} + {hw['pv_streamed_multipliers']}"
        lines = [
            f"{self.model} ({self.stage}), config {self.config} on {hw['part']}",
            f"engines: {hw['multipliers']} multipliers: {hw['qk_multipliers']} in Q·K + "
            f"{hw['pv_multipliers']} in prob·V ({hw['qk_keys_per_cycle']} keys/cycle each at "
            f"head_dim {self.head_dim}), and the streamed arrays' {streamed} besides, "
            f"top-k {hw['topk_parallelism']} comparators, {hw['clock_mhz']:g} MHz, "
            f"{hw['hbm_channels']} x {hw['hbm_gbps']:g} GB/s HBM",
            f"{'layer':>5} {'tokens':>11} {'heads':>7} {'V rows':>10} {'DRAM':>12} "
            f"{'Q·K':>10} {'prob·V':>10} {'top-k':>8} {'compute':>11} {'DRAM':>11} "
            f"{'bound':>7}",
            f"{'':>5} {'in->kept':>11} {'in->kept':>7} {'':>10} {'bytes':>12} "
            f"{'cycles':>10} {'cycles':>10} {'cycles':>8} {'cycles':>11} {'cycles':>11} "
            f"{'':>7}",
        ]
        for r in self.layers:
            lines.append(
                f"{r.layer:5d} {f'{r.tokens}->{r.kept_tokens}':>11} "
                f"{f'{r.heads}->{r.heads_kept}':>7} {r.values:10d} {r.dram_bytes:12,d} "
                f"{r.cycles['qk']:10.0f} {r.cycles['pv']:10.0f} {r.cycles['topk']:8.0f} "
                f"{r.compute_cycles:11.0f} {r.dram_cycles:11.0f} {r.bound:>7}"
            )
        lines.append(
            "cycles: the emitted loop nest (requested IIs met); compute = busy cycles of the "
            "slowest compute engine, DRAM = of the slowest fetch lane group; a layer is "
            "memory-bound when a fetch process paces its row pipeline"
        )
        rf = self.roofline
        lines.append(
            f"latency {self.latency_cycles:,.0f} cycles = {self.latency_s * 1e6:.2f} us; "
            f"{rf.ops:,} integer ops (2 per MAC done) -> {self.throughput_gops:.1f} "
            f"GOP/s ({self.effective_throughput_gops:.1f} dense-equivalent; peak "
            f"{rf.compute_roof_gops:.0f} GOP/s, {rf.bandwidth_gbps:.0f} GB/s); "
            f"{self.bound}-bound; {rf.op_per_byte:.2f} op/byte "
            f"(ridge {rf.ridge_op_per_byte:.2f}: roofline says {rf.bound}-bound)"
        )
        lines.append(
            f"DRAM {self.dram_bytes:,} bytes; reduction {self.dram_reduction:.2f}x vs "
            f"dense 12-bit, {self.dram_reduction_fp16:.2f}x vs dense fp16"
        )
        res = self.resources
        cap = res.capacity

        def use(k: str) -> str:
            v = getattr(res, k)
            return f"{v}/{cap[k]} ({v / cap[k]:.1%})" if cap and cap[k] else f"{v}/?"

        fits = {True: "fits", False: "does NOT fit", None: "fit unknown"}[res.fits]
        lines.append(
            f"resources on {res.part}: DSP {use('dsp')}, BRAM_18K {use('bram_18k')}, "
            f"URAM {use('uram')}: {fits}"
        )
        lines.extend(f"note: {n}" for n in res.notes)
        return "\n".join(lines) + "\n"


def dense_fp16_bytes(result: SimResult, plan: HardwarePlan) -> int:
    """The dense baseline's access pattern with 16-bit Q, K and V (the same beats)."""
    d = result.info.head_dim
    rows = result.dense_dram_bytes // coded_row_bytes(plan, BASELINE_BITS, d)
    return rows * coded_row_bytes(plan, 16, d)


def performance_report(result: SimResult, plan: HardwarePlan, config_name: str = "") -> Report:
    """Latency, throughput, bound, DRAM reduction and resources of `result` on the plan's
    design (perf/cycles.py: the emitted loop nest on the simulator's records). `bound` is the
    bottleneck that dominates the latency (memory when the layers whose row pipeline is paced
    by a fetch process take more than half of it); `roofline.bound` is the roofline's verdict
    (intensity vs the ridge point). `config_name` only labels the text."""
    info, target = result.info, plan.target
    cyc = all_layer_cycles(result, plan)
    rows = [
        LayerRow(
            rec.layer,
            rec.tokens_in,
            rec.kept_count,
            rec.heads_in,
            len(rec.heads_kept),
            rec.values_fetched,
            rec.requant_fraction,
            layer_ops(c, info.head_dim),
            c.dram_bytes["total"],
            {k: float(v) for k, v in c.engines.items()},
            float(c.compute),
            float(c.dram),
            float(c.latency),
            c.bound,
        )
        for rec, c in zip(result.layers, cyc, strict=True)
    ]
    latency = sum(r.latency_cycles for r in rows)
    latency_s = latency / (target.clock_mhz * 1e6)
    mem = sum(r.latency_cycles for r in rows if r.bound == "memory")
    bound = "memory" if mem * 2 > latency else "compute"
    ops = sum(r.ops for r in rows)
    total_bytes = int(result.dram_bytes["total"])
    rf = roofline(ops, total_bytes, latency_s, plan)
    fp16 = dense_fp16_bytes(result, plan)
    f = plan.fetcher
    hardware = {
        "head_dim": target.max_head_dim,
        "max_tokens": target.max_tokens,
        "multipliers": target.multipliers,
        "topk_parallelism": plan.topk.comparators,
        "clock_mhz": target.clock_mhz,
        "part": target.part,
        "hbm_channels": target.hbm_channels,
        "hbm_gbps": target.hbm_gbps,
        "qk_keys_per_cycle": plan.qk.keys_per_cycle,
        "pv_keys_per_cycle": plan.pv.keys_per_cycle,
        "qk_multipliers": plan.qk.multipliers,
        "pv_multipliers": plan.pv.multipliers,
        "qk_streamed_multipliers": plan.streamed_multipliers[0],
        "pv_streamed_multipliers": plan.streamed_multipliers[1],
        "k_lanes": f.k_lanes,
        "v_lanes": f.v_lanes,
    }
    return Report(
        info.model,
        info.stage,
        hardware,
        rows,
        latency,
        latency_s,
        rf.throughput_gops,
        bound,
        total_bytes,
        result.dense_dram_bytes,
        fp16,
        result.dense_dram_bytes / max(total_bytes, 1),
        fp16 / max(total_bytes, 1),
        rf,
        estimate_resources(plan),
        dense_ops(info) / latency_s / 1e9 if latency_s > 0 else 0.0,
        {
            "cycles": "the emitted loop nest (engines/layer.h, rows.h) on the simulator's "
            "records, by the rules of the C-simulation estimate: requested IIs met, a "
            "DATAFLOW region = slowest process + first row of the others",
            "fetch": f"{f.k_lanes} K + {f.v_lanes} V lanes of {f.burst_bits} bits, a beat per "
            f"{f.beat_millicycles / 1000:g} cycles, {f.latency} cycles to the first beat "
            "(once per row pipeline and port)",
            "burst_bits": f.burst_bits,
            "ops": "2 per Q.K / prob.V MAC actually done; requant recomputes not counted",
        },
        config=config_name or "<defaults>",
        head_dim=info.head_dim,
    )
