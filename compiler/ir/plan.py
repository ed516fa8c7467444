"""The hardware plan: every hardware parameter of the design, decided once.

`tile` fills the fetcher's part and `lower-to-engines` the rest, from the model, the typed IR
and `[hardware]`; after them the plan is the only source of hardware parameters: codegen, the
performance model and the simulator read it (and the IR), never the config. It is part of the
IR: printed in the text form (`// plan.qk: keys_per_cycle=8, multipliers=512`), serialized in
the JSON under `"plan"`, and round-trips exactly.

A new hardware knob is one field here, the line of the pass that fills it, and its consumers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

# The m_axi data width of every code port: SpAtten's fetcher moves 256-bit AXI beats, as does
# one HBM pseudo-channel of the U280 / U55C.
BURST_BITS = 256
# Cycles from a burst request to its first beat: the depth of every fetch loop (an HBM read
# on the U280 takes ~60-100 cycles at 300 MHz; a pipelined burst hides it after the first).
FETCH_LATENCY = 64
# Fetch steps a fetcher FIFO holds ahead of its consumer (Q·K and prob·V take a step's rows as
# they arrive; the m_axi adapters buffer the outstanding bursts).
FETCH_FIFO_DEPTH = 4
# Arrays of the pruning state (dropped-at and importance, for the tokens and for the heads):
# they share one m_axi bundle (gmem_state), so each moves in a bursting loop of its own.
STATE_ARRAYS = 2
# Token-state entries the on-chip scan for visible tokens compacts per cycle.
SCAN_LANES = 16


@dataclass(frozen=True)
class BitWidths:
    """Code widths of the planes in DRAM (K is an MSB and an LSB plane)."""

    q: int
    k_msb: int
    k_lsb: int
    v: int
    progressive: bool  # the K LSB plane is fetched only for rows the requant decision picks

    @property
    def k(self) -> int:
        return self.k_msb + self.k_lsb


@dataclass(frozen=True)
class FetcherPlan:
    """K/V tiles on chip and how codes travel: each row of `head_dim` codes is packed at its
    plane's width into whole `burst_bits` beats (`*_beats` per row)."""

    tile_tokens: int
    tiles: int
    burst_bits: int
    q_beats: int
    k_msb_beats: int
    k_lsb_beats: int
    v_beats: int  # also the output rows' beats (outputs have V's width)
    k_lanes: int  # K rows fetched in parallel, one m_axi port (HBM pseudo-channel) each
    v_lanes: int  # V rows likewise
    beat_millicycles: int  # >= 1000: a lane moves a beat a cycle unless its channel is slower
    latency: int  # cycles to a burst's first beat (depth of the fetch loops)

    def resident(self, keys: int) -> bool:
        """Whether an invocation's `keys` visible keys fit the K/V buffers: then a KV head's
        rows are fetched once and kept for all its query rows (rows.h's `row_item.resident`);
        otherwise every query row streams its keys a tile at a time."""
        return keys <= self.tile_tokens


@dataclass(frozen=True)
class DotPlan:
    """A multiplier array (Q·K or prob·V): `keys_per_cycle` keys of `head_dim` MACs a cycle."""

    multipliers: int
    keys_per_cycle: int
    depth: int  # pipeline depth: multiply, adder tree, (scale | requantize)
    banks: int  # cyclic banks of the buffer it reads (K for Q·K, V for prob·V)


@dataclass(frozen=True)
class SoftmaxPlan:
    lanes: int  # scores per cycle, matched to Q·K's output rate
    exp_hi_entries: int
    exp_lo_entries: int
    recip_entries: int
    exp_depth: int  # exp tables and the row-sum adder tree
    norm_depth: int  # reciprocal and normalization


@dataclass(frozen=True)
class RequantPlan:
    enabled: bool
    threshold_code: int  # recompute a row when its max probability code is below this


@dataclass(frozen=True)
class ValueTopKPlan:
    enabled: bool
    keep_num: int  # keep floor(visible * keep_num / keep_den) V rows per query, at least 1
    keep_den: int
    comparators: int  # per threshold engine
    engines: int  # threshold engines taking rows in turn (matched to the Q·K row rate)


@dataclass(frozen=True)
class TopKPlan:
    """The token / head top-k engine: comparators per quick-select round, and the cycles a
    round costs beyond its ceil(n / comparators) passes (kernels/topk.py)."""

    comparators: int
    round_overhead: int


@dataclass(frozen=True)
class ImportancePlan:
    token_bits: int
    head_bits: int
    tokens: int  # accumulators on chip for the whole run, loaded and stored once
    heads: int
    token_pruning: bool  # the token accumulator and top-k exist
    head_pruning: bool  # the head accumulator and top-k exist
    scan_lanes: int  # token-state entries the visible-token scan compacts per cycle
    token_state_rows: int = 1  # 1: the cascade's one row; layers: each layer's own KV cache
    token_state_groups: int = 1  # rows per layer: 1, or KV heads (a KV cache per KV head)
    token_scores_fresh: bool = False  # the "current" policy: scores restart every invocation
    token_by_recency: bool = False  # the "window" policy: no top-k, the most recent kept
    token_decay_shift: int = 0  # per-layer scores lose score >> shift before each step adds
    token_observation_window: int = 0  # only the last N query rows add to the scores (0: all)

    @property
    def context(self) -> int:
        """Tokens of one sequence (MAX_CTX): the depth of every per-row buffer. `tokens` is
        the whole token state, `token_state_rows` sequences of it."""
        return self.tokens // self.token_state_rows


@dataclass(frozen=True)
class TargetPlan:
    part: str
    clock_mhz: float
    hbm_channels: int
    hbm_gbps: float  # per channel
    multipliers: int  # in all, split evenly between Q·K and prob·V
    max_head_dim: int  # widest head the engines take
    max_tokens: int  # rows of the on-chip K and V buffers

    @property
    def bytes_per_cycle(self) -> float:
        """Peak DRAM bytes per clock cycle."""
        return self.hbm_channels * self.hbm_gbps * 1e9 / (self.clock_mhz * 1e6)


@dataclass(frozen=True)
class HardwarePlan:
    """The whole plan. After `tile` only `fetcher` is set; `lower-to-engines` sets the rest."""

    stage: str
    bits: BitWidths
    fetcher: FetcherPlan
    qk: DotPlan | None = None
    softmax: SoftmaxPlan | None = None
    requant: RequantPlan | None = None
    value_topk: ValueTopKPlan | None = None
    pv: DotPlan | None = None
    topk: TopKPlan | None = None
    importance: ImportancePlan | None = None
    target: TargetPlan | None = None

    @property
    def complete(self) -> bool:
        return all(getattr(self, f.name) is not None for f in dataclasses.fields(self))

    @property
    def qk_stream_ii(self) -> int:
        """Cycles per fetch step (`k_lanes` K rows) when Q·K scores the rows as they arrive:
        its `keys_per_cycle` keys a cycle (the first row of a KV head, every tiled row)."""
        return math.ceil(self.fetcher.k_lanes / self.qk.keys_per_cycle)

    @property
    def pv_stream_ii(self) -> int:
        """Cycles per fetch step (`v_lanes` V rows) when prob·V multiplies the rows as they
        arrive (tiled rows)."""
        return math.ceil(self.fetcher.v_lanes / self.pv.keys_per_cycle)

    @property
    def streamed_multipliers(self) -> tuple[int, int]:
        """(Q·K, prob·V) multipliers of the streamed arrays, which each engine has besides its
        buffer's (rows.h `qk_streamed`, `pv_streamed`: the fetch lanes' rows of `head_dim`
        products unrolled in a loop of II `*_stream_ii`), taken as shared over those cycles:
        the fewest multipliers a loop of that II can do them with."""
        head_dim = self.qk.multipliers // self.qk.keys_per_cycle
        return (
            math.ceil(self.fetcher.k_lanes * head_dim / self.qk_stream_ii),
            math.ceil(self.fetcher.v_lanes * head_dim / self.pv_stream_ii),
        )


ENGINES = (
    "fetcher",
    "qk",
    "softmax",
    "requant",
    "value_topk",
    "pv",
    "writeback",
    "token_accumulator",
    "token_topk",
    "head_accumulator",
    "head_topk",
)
# The plan entry that holds each engine's parameters (writeback has none).
ENGINE_PARAMS = {
    "fetcher": "fetcher",
    "qk": "qk",
    "softmax": "softmax",
    "requant": "requant",
    "value_topk": "value_topk",
    "pv": "pv",
    "token_accumulator": "importance",
    "token_topk": "topk",
    "head_accumulator": "importance",
    "head_topk": "topk",
}


def row_beats(bits: int, head_dim: int, burst_bits: int = BURST_BITS) -> int:
    """Beats of one row of `head_dim` codes packed at `bits` bits (0 for an empty plane)."""
    return math.ceil(bits * head_dim / burst_bits)


def plan_lines(plan: HardwarePlan) -> list[str]:
    """The text form: one `// plan.<entry>: k=v, ...` line per entry, fields sorted."""
    lines = [f"// plan: stage={plan.stage}"]
    for f in dataclasses.fields(plan):
        value = getattr(plan, f.name)
        if dataclasses.is_dataclass(value):
            items = sorted(dataclasses.asdict(value).items())
            lines.append(f"// plan.{f.name}: " + ", ".join(f"{k}={_text(v)}" for k, v in items))
    return lines


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def plan_to_dict(plan: HardwarePlan) -> dict[str, Any]:
    return dataclasses.asdict(plan)


def plan_from_dict(raw: Any) -> HardwarePlan:
    """Rebuild a plan from `plan_to_dict`; any damage is a `ValueError` naming the field."""
    return _build(HardwarePlan, raw, "plan")


_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if set(raw) != set(fields):
        raise ValueError(f"{where} must have exactly the keys {sorted(fields)}")
    values = {}
    for name, f in fields.items():
        kind, value = str(f.type).split(" | ")[0], raw[name]
        if kind in _TYPES:
            values[name] = _scalar(value, kind, f"{where}.{name}")
        elif value is None and "None" in str(f.type):
            values[name] = None
        else:
            values[name] = _build(_ENTRIES[kind], value, f"{where}.{name}")
    return cls(**values)


def _scalar(value: Any, kind: str, where: str) -> Any:
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1 << 31,
        "float": isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0,
        "bool": isinstance(value, bool),
        "str": isinstance(value, str) and value.isprintable() and len(value) <= 64,
    }[kind]
    if not ok:
        raise ValueError(f"{where} must be a {kind} in range, got {value!r:.60}")
    return float(value) if kind == "float" else value


_ENTRIES = {
    cls.__name__: cls
    for cls in (
        BitWidths,
        FetcherPlan,
        DotPlan,
        SoftmaxPlan,
        RequantPlan,
        ValueTopKPlan,
        TopKPlan,
        ImportancePlan,
        TargetPlan,
    )
}
