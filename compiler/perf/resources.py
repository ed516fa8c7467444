"""FPGA resource estimate (DSP48, BRAM_18K, URAM) and the part table.

Assumptions (one line each, all from the hardware plan):

* DSP: one DSP48 per multiplier of the Q·K and prob·V arrays (the 12-bit operands fit one
  18x27 DSP48E2; wider than that would take 2), plus `SOFTMAX_DSP_PER_UNIT` per softmax lane
  (score scaling and the reciprocal multiply).
* K and V buffers: each `2 (double buffer) x max_tokens x head_dim x 12 bit` (the paper's
  196 KB at 1024 tokens, D = 64). Q·K reads `keys_per_cycle` keys of `head_dim` codes a cycle,
  so a buffer is `keys_per_cycle * head_dim * 12` bits wide (the array's multipliers) and
  `2 * max_tokens / keys_per_cycle` words deep; it goes to URAM (72 x 4096) on parts that have
  URAM and to BRAM_18K (36 x 512) otherwise.
* Softmax tables: a 16-entry and a 1024-entry x 17-bit table and a 2048 x 19-bit table, one
  copy per two softmax units (dual port). 16-entry tables sit in LUTRAM.
* FIFOs: 32 address FIFOs (64 x 64 bit) and 32 data FIFOs (64 x 128 bit) after the fetcher
  (SpAtten §IV-A), and the two top-k engines' FIFO_L/FIFO_R (64 deep x P lanes x 24 bit).
  FIFOs of depth <= 32 would be SRLs; these are all 64 deep and map to BRAM_18K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from spatten_hls.compiler.ir.plan import HardwarePlan

SOFTMAX_DSP_PER_UNIT = 2
ONCHIP_BITS = 12
URAM_WIDTH, URAM_DEPTH = 72, 4096
BRAM_WIDTH, BRAM_DEPTH = 36, 512  # BRAM_18K in its widest (simple dual port) shape


@dataclass(frozen=True)
class Part:
    name: str
    dsp: int
    bram_18k: int
    uram: int


PARTS: dict[str, Part] = {
    p.name: p
    for p in (
        Part("xcu280-fsvh2892-2L-e", 9024, 4032, 960),
        Part("xcu55c-fsvh2892-2L-e", 9024, 4032, 960),
        Part("xcu50-fsvh2104-2-e", 5952, 2688, 640),
    )
}


@dataclass
class Resources:
    dsp: int
    bram_18k: int
    uram: int
    part: str
    capacity: dict[str, int] | None  # None: the part is not in the table
    fits: bool | None
    breakdown: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "dsp": self.dsp,
            "bram_18k": self.bram_18k,
            "uram": self.uram,
            "part": self.part,
            "capacity": self.capacity,
            "fits": self.fits,
            "utilization": self.utilization(),
            "breakdown": self.breakdown,
            "notes": list(self.notes),
        }

    def utilization(self) -> dict[str, float] | None:
        if self.capacity is None:
            return None
        return {k: (getattr(self, k) / c if c else None) for k, c in self.capacity.items()}


def bram_blocks(width: int, depth: int) -> int:
    return math.ceil(width / BRAM_WIDTH) * math.ceil(depth / BRAM_DEPTH)


def uram_blocks(width: int, depth: int) -> int:
    return math.ceil(width / URAM_WIDTH) * math.ceil(depth / URAM_DEPTH)


def estimate_resources(plan: HardwarePlan) -> Resources:
    target = plan.target
    part = PARTS.get(target.part)
    notes: list[str] = []
    kpc = plan.qk.keys_per_cycle
    dsp_per_mult = 1 if max(plan.bits.q, ONCHIP_BITS) <= 18 else 2
    breakdown: dict[str, dict[str, int]] = {
        "multipliers": {"dsp": (plan.qk.multipliers + plan.pv.multipliers) * dsp_per_mult},
        "softmax": {"dsp": plan.softmax.lanes * SOFTMAX_DSP_PER_UNIT},
    }
    width = plan.qk.multipliers * ONCHIP_BITS
    depth = math.ceil(2 * target.max_tokens / kpc)
    use_uram = part is None or part.uram > 0
    kv = (
        {"uram": 2 * uram_blocks(width, depth)}
        if use_uram
        else {"bram_18k": 2 * bram_blocks(width, depth)}
    )
    breakdown["kv_buffers"] = kv
    copies = math.ceil(kpc / 2)
    breakdown["softmax_tables"] = {
        "bram_18k": copies * (bram_blocks(17, 1024) + bram_blocks(19, 2048))
    }
    fifo = (
        32 * bram_blocks(64, 64)
        + 32 * bram_blocks(128, 64)
        + 2 * 2 * bram_blocks(plan.topk.comparators * 24, 64)
    )
    breakdown["fifos"] = {"bram_18k": fifo}
    total = {k: sum(b.get(k, 0) for b in breakdown.values()) for k in ("dsp", "bram_18k", "uram")}
    if part is None:
        notes.append(
            f"part '{target.part}' is not in the part table ({', '.join(PARTS)}): "
            "capacities unknown, fits not decided"
        )
        capacity, fits = None, None
    else:
        capacity = {"dsp": part.dsp, "bram_18k": part.bram_18k, "uram": part.uram}
        over = [k for k in capacity if total[k] > capacity[k]]
        fits = not over
        for k in over:
            notes.append(f"{k}: needs {total[k]}, the part has {capacity[k]}")
    return Resources(
        total["dsp"],
        total["bram_18k"],
        total["uram"],
        target.part,
        capacity,
        fits,
        breakdown,
        notes,
    )
