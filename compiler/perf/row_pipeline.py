"""The row pipeline of the emitted design (engines/rows.h) as cycles: one DATAFLOW region
whose items are query rows and whose processes are K fetch, Q fetch, Q·K, softmax exp and
normalization, the value top-k threshold engines, the select pass, V fetch, prob·V and write
back. The rules are those of the C-simulation estimate (engines/csim.h):

* a pipelined loop of n trips at II i costs (n - 1) x i + its depth (the plan's iteration
  latencies); a fetch loop moves a beat per `beat_millicycles / 1000` cycles per lane and
  pays `latency` once per region and port;
* a region costs its slowest process plus the first row's cycles in the others.

The fetch processes stream their rows to Q·K and prob·V. Q·K scores the K rows of a KV
head's first row as they arrive (`k_lanes` a step, `plan.qk_stream_ii` cycles each) and keeps
them for the others; prob·V likewise multiplies the V rows of a KV head's first row as they
arrive (`v_lanes` a step, `plan.pv_stream_ii` cycles each) and keeps them, and a later row
stores the V rows that arrive for it (a step every `v_beats` cycles) before it multiplies.
When the invocation's visible keys do not fit the buffers (`FetcherPlan.resident`), every
row streams: Q·K scores its tiles and prob·V multiplies its kept rows as they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spatten_hls.compiler.ir.plan import FetcherPlan, HardwarePlan

# Processes that move data; a row pipeline paced by one of them is memory-bound.
FETCH_PROCESSES = ("fetch_k", "fetch_q", "fetch_v", "writeback")
SELECT_DEPTH = 1  # depth of the select pass (importance, value top-k filter, V requests)


def ceil_div(a, b):
    return -(-a // b)


def loop_cycles(trips, ii_milli: int, depth: int):
    """As csim.h loop_cycles, elementwise on arrays: (trips - 1) x II + depth, 0 for 0 trips."""
    trips = np.asarray(trips, dtype=np.int64)
    return np.where(trips > 0, ceil_div((trips - 1) * ii_milli, 1000) + depth, 0)


def keep_count(visible: np.ndarray, num: int, den: int) -> np.ndarray:
    """Value top-k survivors of rows seeing `visible` keys (kernels/importance.py)."""
    return np.minimum(np.maximum(1, visible * num // den), visible)


@dataclass
class Region:
    """A DATAFLOW region: per process, the cycles of every item and of the first."""

    total: dict[str, int] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)

    def add(self, process: str, per_item) -> None:
        per_item = np.asarray(per_item, dtype=np.int64)
        if per_item.size == 0:
            return
        self.total[process] = self.total.get(process, 0) + int(per_item.sum())
        self.first[process] = self.first.get(process, 0) + int(per_item.flat[0])

    def cycles(self) -> tuple[int, str | None]:
        """(cycles, the slowest process): the slowest process plus the others' first items."""
        if not self.total:
            return 0, None
        slowest = max(self.total, key=lambda p: (self.total[p], p))
        fill = sum(v for p, v in self.first.items() if p != slowest)
        return self.total[slowest] + fill, slowest

    @staticmethod
    def memory_paced(process: str | None) -> bool:
        """The process pacing the region moves data (a fetch or the write-back process)."""
        return process in FETCH_PROCESSES


@dataclass(frozen=True)
class RowPass:
    """The rows of one pass through the pipeline, in pipeline order."""

    visible: np.ndarray  # keys each row attends to
    kv_first: np.ndarray  # the first row of each KV head (its K rows are fetched then)
    keys: int  # visible keys of the layer: a KV head's K rows
    with_lsb: bool  # full K words (second pass, or no progressive quantization)
    deferred: np.ndarray  # rows the requant decision stops after the softmax
    value_cycles: int  # the pass's quick-select cycles in all
    v_rows: int  # V rows the pass fetched in all
    requests: np.ndarray  # V rows each row asks for (weights to spread v_rows)


class _Charges:
    """Adds per-row cycles to an engine's busy count and to a process of the region."""

    def __init__(self, region: Region, busy: dict[str, int], latency: int) -> None:
        self.region, self.busy, self.latency = region, busy, latency

    def __call__(self, engine: str, process: str, cycles, paid: bool = False) -> None:
        cycles = np.asarray(cycles, dtype=np.int64).copy()
        if paid:  # the port's latency, once per region: on the first row that fetches
            hit = np.flatnonzero(cycles > 0)
            if hit.size:
                cycles[hit[0]] += self.latency
        self.busy[engine] = self.busy.get(engine, 0) + int(cycles.sum())
        self.region.add(process, cycles)


def fetch_cycles(f: FetcherPlan, rows, beats: int, lanes: int):
    """A fetch loop of `rows` rows through `lanes` lanes (without the latency)."""
    steps = ceil_div(np.asarray(rows, dtype=np.int64), lanes) * beats
    return np.where(steps > 0, ceil_div(steps * f.beat_millicycles, 1000), 0)


def _tiled(counts: np.ndarray, tile: int, per_chunk) -> np.ndarray:
    """Cycles of walking `counts` entries TILE at a time, `per_chunk(n)` for a chunk of n."""
    full = counts // tile
    return full * per_chunk(tile) + per_chunk(counts - full * tile)


def row_pass_cycles(plan: HardwarePlan, rows: RowPass, region: Region, busy: dict) -> None:
    """Adds one pass of the row pipeline to `region` and the engines' busy cycles."""
    if len(rows.visible) == 0:
        return
    charge = _Charges(region, busy, plan.fetcher.latency)
    _fetch_k_and_q(plan, rows, charge)
    _qk(plan, rows, charge)
    _softmax(plan, rows, charge)
    kept = _select(plan, rows, charge)
    _prob_v(plan, rows, kept, charge)


def _k_planes(plan: HardwarePlan, rows: RowPass) -> list[int]:
    """Beats per K row of the planes the pass fetches."""
    f = plan.fetcher
    lsb = f.k_lsb_beats if rows.with_lsb and f.k_lsb_beats > 0 else 0
    return [b for b in (f.k_msb_beats, lsb) if b]


def _fetch_k_and_q(plan: HardwarePlan, rows: RowPass, charge: _Charges) -> None:
    """Resident: a KV head's K rows when its first row arrives; streamed: every row's visible
    keys a tile at a time. The Q row of every row."""
    f = plan.fetcher
    for beats in _k_planes(plan, rows):
        if f.resident(rows.keys):
            per = fetch_cycles(f, np.where(rows.kv_first, rows.keys, 0), beats, f.k_lanes)
        else:
            per = _tiled(
                rows.visible, f.tile_tokens, lambda n, b=beats: fetch_cycles(f, n, b, f.k_lanes)
            )
        charge("fetch_k", "fetch_k", per, True)
    q = ceil_div(f.q_beats * f.beat_millicycles, 1000)
    charge("fetch_q", "fetch_q", np.full(len(rows.visible), q), True)


def _qk(plan: HardwarePlan, rows: RowPass, charge: _Charges) -> None:
    """Q·K over the visible keys: from the buffer, or as the K rows arrive (the first row of a
    KV head scores all of the head's rows; streamed, every row its tiles)."""
    f, qk = plan.fetcher, plan.qk
    streamed = lambda n: loop_cycles(  # noqa: E731
        ceil_div(n, f.k_lanes), 1000 * plan.qk_stream_ii, qk.depth
    )
    if not f.resident(rows.keys):
        cycles = _tiled(rows.visible, f.tile_tokens, streamed)
    else:
        buffered = loop_cycles(ceil_div(rows.visible, qk.keys_per_cycle), 1000, qk.depth)
        cycles = np.where(rows.kv_first, streamed(np.full(len(rows.visible), rows.keys)), buffered)
    charge("qk", "qk", cycles)


def _softmax(plan: HardwarePlan, rows: RowPass, charge: _Charges) -> None:
    sm = plan.softmax
    blocks = ceil_div(rows.visible, sm.lanes)
    charge("softmax_exp", "softmax_exp", loop_cycles(blocks, 1000, sm.exp_depth))
    charge("softmax_norm", "softmax_norm", loop_cycles(blocks, 1000, sm.norm_depth))


def _select(plan: HardwarePlan, rows: RowPass, charge: _Charges) -> np.ndarray:
    """The select pass and the value top-k threshold engines; returns the rows' kept V rows
    (0 for deferred rows, which stop before it)."""
    vt, visible = plan.value_topk, rows.visible
    done = ~rows.deferred
    kept = keep_count(visible, vt.keep_num, vt.keep_den) if vt.enabled else visible.copy()
    pruned = done & (kept < visible)
    select = loop_cycles(ceil_div(visible, plan.softmax.lanes), 1000, SELECT_DEPTH)
    charge("select", "select", np.where(done, select, 0))
    if pruned.any():  # the quick-select total, spread over the rows by their size
        weight = np.where(pruned, visible, 0).astype(np.float64)
        topk = np.floor(rows.value_cycles * weight / weight.sum()).astype(np.int64)
        engine = np.arange(len(visible)) % vt.engines
        for e in range(vt.engines):  # the threshold engines take the rows in turn
            charge("value_topk", f"threshold{e}", np.where(engine == e, topk, 0))
    return np.where(done, kept, 0)


def _prob_v(plan: HardwarePlan, rows: RowPass, kept: np.ndarray, charge: _Charges) -> None:
    """V fetch, prob·V and the write back of the rows not deferred. Resident: the pass's V
    rows spread over the rows by what each asks for (the requests including rows already on
    chip); the first row of a KV head multiplies its kept rows as they arrive (all of them
    come), a later row stores its share and multiplies from the buffer. Streamed: each row's
    kept rows TILE at a time, multiplied as they arrive."""
    f, pv = plan.fetcher, plan.pv
    done = ~rows.deferred
    streamed = lambda n: loop_cycles(  # noqa: E731
        ceil_div(n, f.v_lanes), 1000 * plan.pv_stream_ii, pv.depth
    )
    if f.resident(rows.keys):
        weight = np.where(done, rows.requests, 0).astype(np.float64)
        share = np.zeros(len(kept), np.int64)
        if weight.sum():
            share = np.floor(rows.v_rows * weight / weight.sum()).astype(np.int64)
        charge("fetch_v", "fetch_v", fetch_cycles(f, share, f.v_beats, f.v_lanes), True)
        store = loop_cycles(ceil_div(share, f.v_lanes), 1000 * f.v_beats, 1)
        buffered = store + loop_cycles(ceil_div(kept, pv.keys_per_cycle), 1000, pv.depth)
        cycles = np.where(rows.kv_first, streamed(kept), buffered)
    else:
        per = _tiled(kept, f.tile_tokens, lambda n: fetch_cycles(f, n, f.v_beats, f.v_lanes))
        charge("fetch_v", "fetch_v", per, True)
        cycles = _tiled(kept, f.tile_tokens, streamed)
    charge("pv", "pv", np.where(done, cycles, 0))
    write = loop_cycles(f.v_beats, f.beat_millicycles, 1)
    charge("writeback", "writeback", np.where(done, write, 0))
