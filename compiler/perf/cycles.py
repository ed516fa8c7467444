"""Cycle model of the emitted design: the loop nest of engines/layer.h and engines/rows.h,
evaluated on the simulator's per-row records instead of run.

The rules are those of the C-simulation estimate (engines/csim.h), so `spatten report` and
`spatten csim` count the same structure:

* a pipelined loop of n trips at II 1 costs n - 1 + its depth (the plan's iteration
  latencies); a fetch loop moves a beat per `beat_millicycles / 1000` cycles and pays
  `latency` once per row pipeline and port;
* per invocation: the state load (first invocation) and store (last), the visible-token
  scan, the row pipeline, the deferred rows' second pass, the importance fold, the head and
  token top-k;
* the row pipeline is one DATAFLOW region over the rows (query row x live head) whose
  processes are: K fetch (a KV head's rows when its first row arrives), Q fetch, Q·K
  (`keys_per_cycle` keys a cycle), softmax exp and normalization (`lanes` scores a cycle),
  the value top-k threshold engines (rows in turn), the select pass (token importance, value
  top-k filter, V requests, `lanes` keys a cycle), V fetch, prob·V, write back. A region
  costs its slowest process plus the first row's cycles in the others.

Where the record holds a total instead of per-row values (value top-k's quick-select cycles,
the V rows each row fetched) the model spreads the total over the rows; that is the only
approximation against the C-simulation estimate. An invocation is memory-bound when the
slowest process of its row pipeline spends most of its cycles moving data: a fetch or the
write-back process, or, tiled, Q·K or prob·V fetching their tiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spatten_hls.compiler.ir.plan import HardwarePlan
from spatten_hls.compiler.sim.result import PLANES, RowProfile, SimResult, StepRecord

# The engines of the estimate, as engines/csim.h and compiler/codegen/counters.py name them.
ENGINES = (
    "state",
    "scan",
    "fetch_k",
    "fetch_q",
    "qk",
    "softmax_exp",
    "softmax_norm",
    "select",
    "importance",
    "value_topk",
    "fetch_v",
    "pv",
    "writeback",
    "topk",
)
FETCH_PROCESSES = ("fetch_k", "fetch_q", "fetch_v", "writeback")
# Engines of the row pipeline that compute (the threshold engines count per engine).
COMPUTE_ENGINES = ("qk", "softmax_exp", "softmax_norm", "select", "pv")
SCAN_DEPTH = 2  # depth of the scan, fold and drop passes over the token state
SIMPLE_DEPTH = 2  # depth of the loops over the heads
SELECT_DEPTH = 1  # depth of the select pass (importance, value top-k filter, V requests)


def _ceil(a, b):
    return -(-a // b)


def loop_cycles(trips, ii_milli: int, depth: int):
    """As csim.h loop_cycles, elementwise on arrays: (trips - 1) x II + depth, 0 for 0 trips."""
    trips = np.asarray(trips, dtype=np.int64)
    return np.where(trips > 0, _ceil((trips - 1) * ii_milli, 1000) + depth, 0)


@dataclass
class Region:
    """A DATAFLOW region: per process, the cycles of every item and of the first."""

    total: dict[str, int] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)
    fetching: dict[str, int] = field(default_factory=dict)  # of total: cycles moving data

    def add(self, process: str, per_item, fetch: bool = False) -> None:
        per_item = np.asarray(per_item, dtype=np.int64)
        if per_item.size == 0:
            return
        self.total[process] = self.total.get(process, 0) + int(per_item.sum())
        self.first[process] = self.first.get(process, 0) + int(per_item.flat[0])
        if fetch:
            self.fetching[process] = self.fetching.get(process, 0) + int(per_item.sum())

    def memory_paced(self, process: str | None) -> bool:
        """The process pacing the region spends most of its cycles moving data (a fetch or
        write-back process, or a tiled Q·K / prob·V that fetches its tiles itself)."""
        if process is None:
            return False
        return process in FETCH_PROCESSES or 2 * self.fetching.get(process, 0) > self.total[process]

    def cycles(self) -> tuple[int, str | None]:
        """(cycles, the slowest process): the slowest process plus the others' first items."""
        if not self.total:
            return 0, None
        slowest = max(self.total, key=lambda p: (self.total[p], p))
        fill = sum(v for p, v in self.first.items() if p != slowest)
        return self.total[slowest] + fill, slowest


@dataclass
class InvocationCycles:
    engines: dict[str, int]  # busy cycles per engine
    total: int
    slowest: str | None  # the slowest process of the row pipeline (None: no rows)
    memory_paced: bool  # ... and it spends most of its cycles moving data

    @property
    def bound(self) -> str:
        return "memory" if self.memory_paced else "compute"


def _keep_count(visible: np.ndarray, num: int, den: int) -> np.ndarray:
    return np.minimum(np.maximum(1, visible * num // den), visible)


class _Model:
    """The plan's rates and depths, and the cycle rules of each process."""

    def __init__(self, plan: HardwarePlan) -> None:
        self.plan = plan
        f = plan.fetcher
        self.f = f
        self.tiled = f.tiles > 1
        self.lsb = f.k_lsb_beats > 0

    def fetch(self, rows, beats: int, lanes: int):
        """A fetch loop of `rows` rows through `lanes` lanes (no latency)."""
        steps = _ceil(np.asarray(rows, dtype=np.int64), lanes) * beats
        return np.where(steps > 0, _ceil(steps * self.f.beat_millicycles, 1000), 0)

    def rows_pass(
        self,
        region: Region,
        busy: dict,
        visible: np.ndarray,
        kv_first: np.ndarray,
        nk: int,
        with_lsb: bool,
        deferred: np.ndarray,
        value_cycles: int,
        v_rows: int,
        request_counts: np.ndarray,
        token_pruning: bool,
    ) -> None:
        """One pass of the row pipeline over rows with these `visible` counts (pipeline
        order); kv_first marks each KV head's first row; deferred rows stop after softmax."""
        p, f = self.plan, self.f
        n = len(visible)
        if n == 0:
            return
        latency = f.latency
        done = ~deferred

        def charge(engine: str, process: str, cycles, paid: bool = False) -> None:
            cycles = np.asarray(cycles, dtype=np.int64).copy()
            if paid and cycles.size:
                hit = np.flatnonzero(cycles > 0)
                if hit.size:
                    cycles[hit[0]] += latency
            busy[engine] = busy.get(engine, 0) + int(cycles.sum())
            region.add(process, cycles, fetch=engine in FETCH_PROCESSES)

        if not self.tiled:
            k_rows = np.where(kv_first, nk, 0)
            charge("fetch_k", "fetch_k", self.fetch(k_rows, f.k_msb_beats, f.k_lanes), True)
            if with_lsb and self.lsb:
                charge("fetch_k", "fetch_k", self.fetch(k_rows, f.k_lsb_beats, f.k_lanes), True)
        charge("fetch_q", "fetch_q", np.full(n, _ceil(f.q_beats * f.beat_millicycles, 1000)), True)
        if self.tiled:
            full = visible // f.tile_tokens
            last = visible - full * f.tile_tokens
            for beats in (f.k_msb_beats, f.k_lsb_beats if with_lsb and self.lsb else 0):
                if beats:
                    per = full * self.fetch(f.tile_tokens, beats, f.k_lanes) + self.fetch(
                        last, beats, f.k_lanes
                    )
                    charge("fetch_k", "qk", per, True)
            qk = full * loop_cycles(
                _ceil(f.tile_tokens, p.qk.keys_per_cycle), 1000, p.qk.depth
            ) + loop_cycles(_ceil(last, p.qk.keys_per_cycle), 1000, p.qk.depth)
        else:
            qk = loop_cycles(_ceil(visible, p.qk.keys_per_cycle), 1000, p.qk.depth)
        charge("qk", "qk", qk)
        lanes = p.softmax.lanes
        charge(
            "softmax_exp",
            "softmax_exp",
            loop_cycles(_ceil(visible, lanes), 1000, p.softmax.exp_depth),
        )
        charge(
            "softmax_norm",
            "softmax_norm",
            loop_cycles(_ceil(visible, lanes), 1000, p.softmax.norm_depth),
        )
        vt = p.value_topk
        kept = _keep_count(visible, vt.keep_num, vt.keep_den) if vt.enabled else visible.copy()
        pruned = done & (kept < visible)
        # the select pass: importance, the value top-k filter and the V requests
        select = np.where(done, loop_cycles(_ceil(visible, lanes), 1000, SELECT_DEPTH), 0)
        busy["select"] = busy.get("select", 0) + int(select.sum())
        region.add("select", select)
        if pruned.any():  # the quick-select total, spread over the rows by their size
            weight = np.where(pruned, visible, 0).astype(np.float64)
            topk = np.floor(value_cycles * weight / weight.sum()).astype(np.int64)
            busy["value_topk"] = busy.get("value_topk", 0) + int(topk.sum())
            engine = np.arange(n) % vt.engines
            for e in range(vt.engines):  # the threshold engines take the rows in turn
                region.add(f"threshold{e}", np.where(engine == e, topk, 0))
        kept = np.where(done, kept, 0)
        if not self.tiled:
            # the pass's V rows spread over the rows by what each asks for (the requests
            # include rows already on chip; the record has the pass's total only)
            weight = np.where(done, request_counts, 0).astype(np.float64)
            share = (
                np.floor(v_rows * weight / weight.sum()).astype(np.int64)
                if weight.sum()
                else np.zeros(n, np.int64)
            )
            charge("fetch_v", "fetch_v", self.fetch(share, f.v_beats, f.v_lanes), True)
            pv = loop_cycles(_ceil(kept, p.pv.keys_per_cycle), 1000, p.pv.depth)
        else:
            full = kept // f.tile_tokens
            last = kept - full * f.tile_tokens
            per = full * self.fetch(f.tile_tokens, f.v_beats, f.v_lanes) + self.fetch(
                last, f.v_beats, f.v_lanes
            )
            charge("fetch_v", "pv", per, True)
            pv = full * loop_cycles(
                _ceil(f.tile_tokens, p.pv.keys_per_cycle), 1000, p.pv.depth
            ) + loop_cycles(_ceil(last, p.pv.keys_per_cycle), 1000, p.pv.depth)
        pv = np.where(done, pv, 0)
        write = np.where(done, loop_cycles(f.v_beats, f.beat_millicycles, 1), 0)
        busy["pv"] = busy.get("pv", 0) + int(pv.sum())
        busy["writeback"] = busy.get("writeback", 0) + int(write.sum())
        region.add("pv", pv)
        region.add("writeback", write)


def _requests(
    visible: np.ndarray, heads: np.ndarray, group: int, kept: np.ndarray, pruned: np.ndarray
) -> np.ndarray:
    """V requests per row of a pass: a value-pruned row asks for its kept rows; a row that
    keeps all asks for the keys beyond what its KV head's earlier rows brought in order."""
    counts = np.where(pruned, kept, 0)
    upto = -1
    kv_now = None
    for i in np.flatnonzero(~pruned):
        kv = heads[i] // group
        if kv != kv_now:
            kv_now, upto = kv, 0
        counts[i] = max(0, int(visible[i]) - upto)
        upto = max(upto, int(visible[i]))
    return counts


def invocation_cycles(
    step: StepRecord, plan: HardwarePlan, group: int, first: bool, last: bool
) -> InvocationCycles:
    """The estimate of one invocation (a layer in a step) of the design."""
    rows: RowProfile = step.rows
    f, imp = plan.fetcher, plan.importance
    model = _Model(plan)
    busy: dict[str, int] = {e: 0 for e in ENGINES}
    total = 0
    state = int(loop_cycles(imp.tokens, 1000, f.latency) + loop_cycles(imp.heads, 1000, f.latency))
    for moved in (first, last):
        if moved:
            busy["state"] += state
            total += state
    scan = int(loop_cycles(_ceil(rows.end, imp.scan_lanes), 1000, SCAN_DEPTH))
    busy["scan"] += scan
    total += scan
    heads = np.asarray(rows.heads, dtype=np.int64)
    n_rows = len(rows.visible)
    vt = plan.value_topk
    # pass 1: the query rows of every live head, head by head
    visible = np.tile(rows.visible, len(heads))
    row_heads = np.repeat(heads, n_rows)
    kv = row_heads // group
    kv_first = np.r_[True, kv[1:] != kv[:-1]] if len(kv) else np.zeros(0, bool)
    defer_count = len(rows.deferred_visible)
    deferred = np.zeros(len(visible), dtype=bool)
    second_visible = rows.deferred_visible
    kept = _keep_count(visible, vt.keep_num, vt.keep_den) if vt.enabled else visible
    value_cycles = [rows.value_topk_cycles, 0]
    if defer_count:  # which rows were deferred is not recorded: the same count, spread
        at = np.linspace(0, len(visible) - 1, defer_count).round().astype(np.int64)
        deferred[at] = True
        pruned2 = _keep_count(second_visible, vt.keep_num, vt.keep_den) < second_visible
        w1 = float(np.where(~deferred & (kept < visible), visible, 0).sum())
        w2 = float(np.where(pruned2, second_visible, 0).sum()) if vt.enabled else 0.0
        if w1 + w2 > 0:
            value_cycles = [
                round(rows.value_topk_cycles * w1 / (w1 + w2)),
                round(rows.value_topk_cycles * w2 / (w1 + w2)),
            ]
    slowest, paced = None, False
    for which in (0, 1):
        region = Region()
        if which == 0:
            vis, first_of_kv, defer, with_lsb = (
                visible,
                kv_first,
                deferred,
                not plan.bits.progressive,
            )
            pass_heads = row_heads
        else:
            if not defer_count:
                break
            vis = second_visible
            with_lsb, defer = True, np.zeros(defer_count, dtype=bool)
            # the deferred rows' KV heads, in order: rows.deferred_kv_heads of them
            bounds = np.linspace(0, defer_count, rows.deferred_kv_heads + 1).astype(int)[:-1]
            first_of_kv = np.zeros(defer_count, dtype=bool)
            first_of_kv[bounds] = True
            pass_heads = np.cumsum(first_of_kv) * group
        kept_p = _keep_count(vis, vt.keep_num, vt.keep_den) if vt.enabled else vis
        requests = _requests(vis, pass_heads, group, kept_p, (kept_p < vis) & ~defer)
        model.rows_pass(
            region,
            busy,
            np.asarray(vis, dtype=np.int64),
            first_of_kv,
            rows.keys,
            with_lsb,
            defer,
            value_cycles[which],
            rows.v_rows[which],
            requests,
            imp.token_pruning,
        )
        cycles, process = region.cycles()
        total += cycles
        if slowest is None:
            slowest, paced = process, region.memory_paced(process)
    if imp.token_pruning:
        fold = int(loop_cycles(_ceil(rows.end, imp.scan_lanes), 1000, SCAN_DEPTH))
        busy["importance"] += fold
        total += fold
    if imp.head_pruning:
        sums = int(loop_cycles(imp.heads, 1000, SIMPLE_DEPTH))
        busy["importance"] += sums
        total += sums
    selects = step.topk_cycles or 0
    if rows.head_candidates:
        selects += int(loop_cycles(rows.head_candidates, 1000, SIMPLE_DEPTH))
    if rows.token_selected:
        selects += int(loop_cycles(_ceil(rows.end, imp.scan_lanes), 1000, SCAN_DEPTH))
    busy["topk"] += selects
    total += selects
    return InvocationCycles(busy, total, slowest, slowest is not None and paced)


@dataclass
class LayerCycles:
    """One layer over every step of the run."""

    layer: int
    engines: dict[str, int]  # busy cycles per engine, summed over steps
    latency: int  # the estimate, summed over steps
    compute: int  # busy cycles of the busiest compute engine (per threshold engine for top-k)
    dram: int  # busy cycles of the busiest fetch or write-back engine
    dram_bytes: dict[str, int]  # per plane, and "total"
    pairs: int
    values: int
    bound: str  # "memory" when memory-bound invocations take most of the layer's cycles


def all_layer_cycles(result: SimResult, plan: HardwarePlan) -> list[LayerCycles]:
    info = result.info
    steps = result.steps
    out = []
    per_layer: dict[int, list[tuple[StepRecord, InvocationCycles]]] = {}
    for i, step in enumerate(steps):
        c = invocation_cycles(step, plan, info.group_size, i == 0, i == len(steps) - 1)
        per_layer.setdefault(step.layer, []).append((step, c))
    for layer in range(info.num_layers):
        items = per_layer.get(layer, [])
        engines = {e: sum(c.engines[e] for _, c in items) for e in ENGINES}
        memory = sum(c.total for _, c in items if c.bound == "memory")
        latency = sum(c.total for _, c in items)
        dram = {p: sum(s.dram_bytes[p] for s, _ in items) for p in PLANES}
        dram["total"] = sum(dram.values())
        compute = max(
            [engines[e] for e in COMPUTE_ENGINES]
            + [engines["value_topk"] // plan.value_topk.engines]
        )
        out.append(
            LayerCycles(
                layer,
                engines,
                latency,
                compute,
                max(engines[e] for e in FETCH_PROCESSES),
                dram,
                sum(s.pairs for s, _ in items),
                sum(s.values for s, _ in items),
                "memory" if memory * 2 > latency else "compute",
            )
        )
    return out
