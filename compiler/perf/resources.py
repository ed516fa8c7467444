"""FPGA resource estimate (DSP48, BRAM_18K, URAM; LUTRAM bits as a note) of the emitted
design, from its structure (engines/layer.h, rows.h and the plan's factors):

* DSP: one DSP48E2 per multiplier (16 x 16 and 17 x 16 bit products fit one 27 x 18 DSP) of
  the two arrays of each dot engine: the buffer's (`keys_per_cycle` rows of `head_dim`) and
  the streamed one (`k_lanes` / `v_lanes` rows of `head_dim` products unrolled in a loop of
  II `qk_stream_ii` / `pv_stream_ii`, counted as Vitis sharing them over those cycles:
  ceil(lanes x head_dim / II); nothing in the source forces that sharing); `SCALE_DSP`
  per scaled Q·K score of either array (a 48 x 23 bit product), two per softmax lane (the exp
  table product and the normalization), and `HEAD_WEIGHT_DSP` for the head importance
  weighting.
* Memories, each mapped by its shape: the K, K-LSB and V buffers (Q·K's and prob·V's own) are
  `banks` cyclic banks of rows reshaped into `head_dim x 16`-bit words (URAM on parts that
  have it, else BRAM_18K), with the fetchers' FIFOs in front of them, one per lane of
  `FETCH_FIFO_DEPTH` rows (V rows with their 32-bit keys); the row buffers between the
  pipeline processes (scores 24, exponentials 17, probabilities 17 bits and a copy of them per
  value top-k threshold engine; the kept list 32 + 17 and the V request list 32 bits) are
  ping-pong and split in `softmax.lanes` banks; each value top-k threshold engine holds three
  candidate buffers of 17 bits in one array of `comparators` banks; the token selection (the
  scores and flags it takes, and the top-k's three 64-bit candidate buffers likewise); the
  token state (32 and 64 bits, all `token_state_rows` sequences of it) in `scan_lanes` banks
  an array, the layer's importance accumulator (64 bits), the visible positions (32 bits: one
  copy, one in `k_lanes` and one in `v_lanes` banks), the V residency tags (32 bits) and the
  deferred-row and job lists (64 bits) besides. Every buffer but the token state holds one
  sequence (`MAX_CTX` tokens). A memory of fewer than `LUTRAM_MAX_DEPTH` words sits in LUTRAM
  (reported in bits, not in the fit check), deeper ones in BRAM_18K, in whichever of its
  shapes (36 x 512 to 1 x 16384) takes the fewest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from spatten_hls.compiler.ir.plan import FETCH_FIFO_DEPTH, HardwarePlan

CONTAINER_BITS = 16  # code_t: the on-chip word of every code (engines/spatten_types.h)
SCALE_DSP = 4  # a 48 x 23 bit product: 2 x 2 DSP48E2
SOFTMAX_DSP_PER_LANE = 2
HEAD_WEIGHT_DSP = 4  # a 64 x 17 bit product
LUTRAM_MAX_DEPTH = 64
URAM_WIDTH, URAM_DEPTH = 72, 4096
# BRAM_18K's shapes (width x depth, the widest in simple dual port mode): a memory takes the
# shape that needs the fewest blocks, as Vitis maps it
BRAM_SHAPES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))


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
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM_SHAPES)


def uram_blocks(width: int, depth: int) -> int:
    return math.ceil(width / URAM_WIDTH) * math.ceil(depth / URAM_DEPTH)


@dataclass
class _Memories:
    """Memories by kind: BRAM_18K, URAM blocks and LUTRAM bits, per group."""

    use_uram: bool
    groups: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, group: str, copies: int, width: int, depth: int, uram: bool = False) -> None:
        entry = self.groups.setdefault(group, {"bram_18k": 0, "uram": 0, "lutram_bits": 0})
        if depth < LUTRAM_MAX_DEPTH:
            entry["lutram_bits"] += copies * width * depth
        elif uram and self.use_uram:
            entry["uram"] += copies * uram_blocks(width, depth)
        else:
            entry["bram_18k"] += copies * bram_blocks(width, depth)


def _token_selection(mem: _Memories, ctx: int, comparators: int, by_recency: bool) -> None:
    """The token selection's memories (layer.h `select_tokens`, importance.h, topk.h): the
    layer's scores and the protect and survivor flags; with a top-k (not the window policy)
    also the unprotected scores, their chosen flags and the quick-select's three candidate
    buffers of 64-bit scores (one array cut into `comparators` cyclic banks along the
    scores, each bank holding its share of all three)."""
    mem.add("token_selection", 1, 64, ctx)  # the scores handed to the selection
    mem.add("token_selection", 2, 1, ctx)  # protect, survivors
    if not by_recency:
        mem.add("token_selection", 1, 64, ctx)  # the unprotected scores
        mem.add("token_selection", 1, 1, ctx)  # chosen
        mem.add("token_selection", comparators, 64, 3 * math.ceil(ctx / comparators))


def estimate_resources(plan: HardwarePlan) -> Resources:
    target, f = plan.target, plan.fetcher
    part = PARTS.get(target.part)
    notes: list[str] = []
    d = plan.qk.multipliers // plan.qk.keys_per_cycle  # head_dim
    lanes = plan.softmax.lanes
    qk_streamed, pv_streamed = plan.streamed_multipliers
    streamed_scores = math.ceil(f.k_lanes / plan.qk_stream_ii)  # scale_score, shared likewise
    breakdown: dict[str, dict[str, int]] = {
        "multipliers": {"dsp": plan.qk.multipliers + plan.pv.multipliers},
        "streamed_multipliers": {"dsp": qk_streamed + pv_streamed},
        "score_scaling": {"dsp": (plan.qk.keys_per_cycle + streamed_scores) * SCALE_DSP},
        "softmax": {"dsp": lanes * SOFTMAX_DSP_PER_LANE},
        "head_importance": {"dsp": HEAD_WEIGHT_DSP if plan.importance.head_pruning else 0},
    }
    mem = _Memories(use_uram=part is None or part.uram > 0)
    word = d * CONTAINER_BITS
    for name, banks, present in (
        ("k_buffer", plan.qk.banks, True),
        ("k_lsb_buffer", plan.qk.banks, f.k_lsb_beats > 0),
        ("v_buffer", plan.pv.banks, True),
    ):
        if present:
            mem.add(name, banks, word, math.ceil(f.tile_tokens / banks), uram=True)
    # the fetchers' FIFOs: one per lane (and K plane), FETCH_FIFO_DEPTH rows (V: and keys)
    for fetch_lanes, width, present in (
        (f.k_lanes, word, True),
        (f.k_lanes, word, f.k_lsb_beats > 0),
        (f.v_lanes, word + 32, True),
    ):
        if present:
            mem.add("fetch_fifos", fetch_lanes, width, FETCH_FIFO_DEPTH)
    imp = plan.importance
    ctx = imp.context  # MAX_CTX: a row buffer holds one sequence
    per_lane = math.ceil(ctx / lanes)
    vt = plan.value_topk
    # s, e, p, the threshold engines' copies of p, kept index, kept p, request list
    for width in (24, 17, 17, *[17] * vt.engines, 32, 17, 32):
        mem.add("row_buffers", 2 * lanes, width, per_lane)
    if vt.enabled:
        # topk.h `buf[3][MAXN]` cyclic over its second dimension: `comparators` banks, each
        # holding its share of all three candidate buffers
        depth = 3 * math.ceil(ctx / vt.comparators)
        mem.add("value_topk", vt.engines * vt.comparators, 17, depth)
    if imp.token_pruning:
        _token_selection(mem, ctx, plan.topk.comparators, by_recency=imp.token_by_recency)
    scan = imp.scan_lanes
    # dropped-at (32 bits) and importance (64 bits), each `[rows][MAX_CTX]` cyclic over the
    # tokens: `scan_lanes` banks an array, every row of the state in each
    for width in (32, 64):
        mem.add("token_state", scan, width, imp.token_state_rows * math.ceil(ctx / scan))
    mem.add("importance", lanes, 64, per_lane)
    # the visible positions: a copy each for the row schedule and the K and V fetches
    for banks in (1, f.k_lanes, f.v_lanes):
        mem.add("positions", banks, 32, math.ceil(ctx / banks))
    mem.add("v_tags", lanes, 32, math.ceil(f.tile_tokens / lanes))
    mem.add("deferred_rows", 2, 64, imp.heads * ctx)  # the list and the job list
    lutram = 0
    for group, entry in mem.groups.items():
        lutram += entry.pop("lutram_bits")
        breakdown[group] = entry
    total = {k: sum(b.get(k, 0) for b in breakdown.values()) for k in ("dsp", "bram_18k", "uram")}
    notes.append(f"LUTRAM: {lutram / 1024:.0f} kbit of shallow memories (not in the fit check)")
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
