"""Cycle model of the emitted design: the loop nest of engines/layer.h and engines/rows.h,
evaluated on the simulator's per-row records instead of run.

The rules are those of the C-simulation estimate (engines/csim.h), so `spatten report` and
`spatten csim` count the same structure. Per invocation, in sequence: the state load (first
invocation) and store (last), the visible-token scan, the row pipeline over the query rows of
every live head (perf/row_pipeline.py: one DATAFLOW region), the deferred rows' job list and
second pass, the importance fold and the head and token top-k.

Where the record holds a total instead of per-row values (value top-k's quick-select cycles,
the V rows each row fetched, which rows were deferred) the model spreads the total over the
rows; that is the only approximation against the C-simulation estimate. An invocation is
memory-bound when the slowest process of its row pipeline moves data: a fetch or the
write-back process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from spatten_hls.compiler.ir.plan import STATE_ARRAYS, HardwarePlan
from spatten_hls.compiler.perf.row_pipeline import (
    FETCH_PROCESSES,
    Region,
    RowPass,
    ceil_div,
    keep_count,
    loop_cycles,
    row_pass_cycles,
)
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
# Engines of the row pipeline that compute (the threshold engines count per engine).
COMPUTE_ENGINES = ("qk", "softmax_exp", "softmax_norm", "select", "pv")
SCAN_DEPTH = 2  # depth of the scan, fold and drop passes over the token state
SIMPLE_DEPTH = 2  # depth of the loops over the heads


@dataclass
class InvocationCycles:
    engines: dict[str, int]  # busy cycles per engine
    total: int
    slowest: str | None  # the slowest process of the row pipeline (None: no rows)
    memory_paced: bool  # ... and it moves data

    @property
    def bound(self) -> str:
        return "memory" if self.memory_paced else "compute"


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


def _sequential(step: StepRecord, plan: HardwarePlan, first: bool, last: bool) -> list:
    """(engine, cycles) of the invocation's loops outside the row pipeline."""
    rows: RowProfile = step.rows
    f, imp = plan.fetcher, plan.importance
    token_passes = int(loop_cycles(ceil_div(rows.end, imp.scan_lanes), 1000, SCAN_DEPTH))
    # the state's arrays share one m_axi bundle: a bursting loop each, one after another
    state = STATE_ARRAYS * int(
        loop_cycles(imp.tokens, 1000, f.latency) + loop_cycles(imp.heads, 1000, f.latency)
    )
    # With per-KV-head selection an invocation runs its KV heads one after another, a record
    # each: the heads' parameters load before the first, the heads' importance and top-k run
    # after the last; the scan, passes, fold and token top-k run for every KV head.
    opens = step.kv_group in (None, 0)
    closes = step.kv_group in (None, imp.token_state_groups - 1)
    # the heads' parameters on chip: the score scales (and head weights), a cycle each a head
    arrays = 3 if imp.head_pruning else 2
    params = int(loop_cycles(imp.heads, 1000 * arrays, f.latency))
    out = [("state", state)] * (int(first) + int(last)) + [("state", params)] * int(opens)
    out.append(("scan", token_passes))
    if len(rows.deferred_visible):  # the second pass's job list, copied from the deferred list
        out.append(("scan", int(loop_cycles(len(rows.deferred_visible), 1000, 1))))
    if imp.token_pruning:
        out.append(("importance", token_passes))  # the fold into the state
    if imp.head_pruning and closes:
        out.append(("importance", int(loop_cycles(imp.heads, 1000, SIMPLE_DEPTH))))
    selects = step.topk_cycles or 0
    if rows.head_candidates:
        selects += int(loop_cycles(rows.head_candidates, 1000, SIMPLE_DEPTH))
    if rows.token_selected:
        selects += token_passes  # the drop pass
    out.append(("topk", selects))
    return out


def _value_cycles(rows: RowProfile, plan: HardwarePlan, first: RowPass, second) -> list[int]:
    """The quick-select total split between the passes by the rows they prune."""
    vt = plan.value_topk
    if not len(rows.deferred_visible):
        return [rows.value_topk_cycles, 0]

    def weight(visible: np.ndarray, deferred: np.ndarray) -> float:
        pruned = ~deferred & (keep_count(visible, vt.keep_num, vt.keep_den) < visible)
        return float(np.where(pruned, visible, 0).sum()) if vt.enabled else 0.0

    w1 = weight(first.visible, first.deferred)
    w2 = weight(second, np.zeros(len(second), bool))
    if w1 + w2 <= 0:
        return [rows.value_topk_cycles, 0]
    total = rows.value_topk_cycles
    return [round(total * w1 / (w1 + w2)), round(total * w2 / (w1 + w2))]


def _row_passes(step: StepRecord, plan: HardwarePlan, group: int) -> list[RowPass]:
    """Pass 1 (the query rows of every live head, head by head) and, with deferred rows,
    pass 2 (them again with the full K words)."""
    rows: RowProfile = step.rows
    vt = plan.value_topk
    heads = np.asarray(rows.heads, dtype=np.int64)
    visible = np.tile(np.asarray(rows.visible, dtype=np.int64), len(heads))
    row_heads = np.repeat(heads, len(rows.visible))
    kv = row_heads // group
    kv_first = np.r_[True, kv[1:] != kv[:-1]] if len(kv) else np.zeros(0, bool)
    n_late = len(rows.deferred_visible)
    deferred = np.zeros(len(visible), dtype=bool)
    if n_late:  # which rows were deferred is not recorded: the same count, spread
        deferred[np.linspace(0, len(visible) - 1, n_late).round().astype(np.int64)] = True
    second = np.asarray(rows.deferred_visible, dtype=np.int64)
    specs = [(visible, kv_first, deferred, not plan.bits.progressive, row_heads)]
    if n_late:
        # the deferred rows' KV heads, in order: rows.deferred_kv_heads of them
        late_kv_first = np.zeros(n_late, dtype=bool)
        late_kv_first[np.linspace(0, n_late, rows.deferred_kv_heads + 1).astype(int)[:-1]] = True
        late_heads = np.cumsum(late_kv_first) * group
        specs.append((second, late_kv_first, np.zeros(n_late, bool), True, late_heads))
    passes = []
    for which, (vis, kv_starts, late, with_lsb, pass_heads) in enumerate(specs):
        kept = keep_count(vis, vt.keep_num, vt.keep_den) if vt.enabled else vis
        requests = _requests(vis, pass_heads, group, kept, (kept < vis) & ~late)
        passes.append(
            RowPass(vis, kv_starts, rows.keys, with_lsb, late, 0, rows.v_rows[which], requests)
        )
    value = _value_cycles(rows, plan, passes[0], second)[: len(passes)]
    return [replace(p, value_cycles=v) for p, v in zip(passes, value, strict=True)]


def invocation_cycles(
    step: StepRecord, plan: HardwarePlan, group: int, first: bool, last: bool
) -> InvocationCycles:
    """The estimate of one invocation (a layer in a step) of the design."""
    busy: dict[str, int] = {e: 0 for e in ENGINES}
    total = 0
    for engine, cycles in _sequential(step, plan, first, last):
        busy[engine] += cycles
        total += cycles
    slowest, paced = None, False
    for rows in _row_passes(step, plan, group):
        region = Region()
        row_pass_cycles(plan, rows, region, busy)
        cycles, process = region.cycles()
        total += cycles
        if slowest is None:
            slowest, paced = process, region.memory_paced(process)
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
