"""Execution state of the simulator: pruning state across layers and steps, and the frame of
one layer's execution (which queries, keys and heads are live, and what it fetched)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from spatten_hls.compiler.ir.graph import GraphInfo
from spatten_hls.compiler.sim.buffers import BufferPool
from spatten_hls.compiler.sim.quantized import LayerCodes


@dataclass
class PruningState:
    """What token and head pruning remember between layers and generation steps.

    Token state has `token_rows` rows of `context` entries, flat: one row for the cascade
    (and every summarization), one per layer for a per-layer policy in generation (each
    layer's own KV cache), or one per (layer, KV head), layer-major, with per-KV-head
    selection (`token_groups` rows per layer). A token is visible to layer l (its KV head g)
    while l < dropped_at[row][token] (row: 0, or l's own): a token_select after layer l sets
    it to l. In the cascade the token is then gone from every later layer of this step and
    from layer l onwards in later steps (layers before l still see it, which keeps per-layer
    key counts constant across steps as in SpAtten's GPT-2 traces); with a row per layer it
    leaves layer l's cache only.
    Heads follow the cascade rule with head_dropped_at. Importances are integer
    accumulators (docs/numerics.md).
    """

    token_dropped_at: np.ndarray
    token_importance: np.ndarray
    head_dropped_at: np.ndarray
    head_importance: np.ndarray
    token_rows: int = 1
    token_groups: int = 1

    @classmethod
    def fresh(cls, info: GraphInfo, token_rows: int = 1, token_groups: int = 1) -> PruningState:
        never = info.num_layers
        return cls(
            np.full(token_rows * info.context, never, dtype=np.int64),
            np.zeros(token_rows * info.context, dtype=np.int64),
            np.full(info.num_heads, never, dtype=np.int64),
            np.zeros(info.num_heads, dtype=np.int64),
            token_rows,
            token_groups,
        )

    def token_row(self, layer: int, kv_head: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Views of (dropped_at, importance) of the token state that `layer` (its KV head
        `kv_head`, with per-KV-head selection) reads and writes."""
        if self.token_rows == 1:
            return self.token_dropped_at, self.token_importance
        context = len(self.token_dropped_at) // self.token_rows
        row = layer * self.token_groups + kv_head
        at = slice(row * context, (row + 1) * context)
        return self.token_dropped_at[at], self.token_importance[at]

    def visible_tokens(self, layer: int, end: int, kv_head: int = 0) -> np.ndarray:
        """Positions < end that layer `layer` (its KV head `kv_head`) still sees, ascending."""
        return np.flatnonzero(self.token_row(layer, kv_head)[0][:end] > layer)

    def kept_union(self, layer: int, end: int) -> np.ndarray:
        """Positions < end that some KV head of `layer` still sees (all of its rows)."""
        rows = [self.token_row(layer, kv)[0][:end] for kv in range(self.token_groups)]
        return np.flatnonzero(np.max(rows, axis=0) > layer)

    def alive_heads(self, layer: int) -> np.ndarray:
        return self.head_dropped_at > layer


@dataclass
class Frame:
    """One execution of a layer's program over some query rows."""

    codes: LayerCodes
    layer: int
    q_rows: np.ndarray  # absolute positions of the queries computed now
    k_rows: np.ndarray  # absolute positions of the keys visible now (ascending)
    heads_alive: np.ndarray  # bool per query head
    state: PruningState
    pool: BufferPool
    topk_comparators: int | None  # the plan's top-k engine; None: no plan, no cycles counted
    value_comparators: int | None  # the plan's value top-k engine, likewise
    step_query: int | None  # generation: the position of this step's own token
    seq_end: int  # the sequence so far: keys are positions < seq_end
    # per-KV-head selection: the KV head whose query heads (and own tokens) this frame runs;
    # None: every KV head shares the layer's tokens
    kv_group: int | None = None
    selects_heads: bool = True  # the head top-k runs after this frame (the layer's last)
    values_fetched: int = 0
    prob_rows: int = 0  # (query, head) rows that went through the requant decision
    requant_rows: int = 0  # ... of which were recomputed with the full K
    topk_cycles: int = 0
    value_topk_cycles: int = 0  # the value top-k engine's, over every row
    token_selected: bool = False  # the token top-k ran after this layer
    head_candidates: int = 0  # live heads the head top-k chose among (0: it did not run)
    # (pass, kv head) -> V rows (key columns) the rows of that pass used; pass 1 holds the
    # rows the requant decision deferred (the design fetches V afresh in each pass)
    v_fetch: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    deferred: dict[int, np.ndarray] = field(default_factory=dict)  # head -> requant rows
    in_worker: bool = False  # running one head in a worker thread: single-threaded kernels

    def __post_init__(self) -> None:
        # Contiguous positions become slices: views instead of gathered copies, and BLAS sees
        # C-contiguous operands (a gathered K^T can come out in a slow layout).
        self.q_index = _as_index(self.q_rows)
        self.k_index = _as_index(self.k_rows)
        # Causal visibility by position: query i sees the keys at or before its position.
        if self.codes.causal:
            self.visible = np.searchsorted(self.k_rows, self.q_rows, side="right")
        else:
            self.visible = np.full(len(self.q_rows), len(self.k_rows), dtype=np.int64)
        self.visible = self.visible.astype(np.int64)

    def fork(self) -> Frame:
        """A frame for one head's chain in a worker thread: same rows, own counters."""
        return dataclasses.replace(
            self,
            values_fetched=0,
            prob_rows=0,
            requant_rows=0,
            topk_cycles=0,
            value_topk_cycles=0,
            v_fetch={},
            deferred={},
            in_worker=True,
        )

    def merge(self, other: Frame) -> None:
        """Add what a forked frame counted."""
        self.values_fetched += other.values_fetched
        self.prob_rows += other.prob_rows
        self.requant_rows += other.requant_rows
        self.topk_cycles += other.topk_cycles
        self.value_topk_cycles += other.value_topk_cycles
        for key, used in other.v_fetch.items():
            self.use_v(key, used)
        self.deferred.update(other.deferred)

    def use_v(self, key: tuple[int, int], used: np.ndarray) -> None:
        """OR the V rows `used` by some rows into those of (pass, kv head) `key`."""
        if used.any():
            self.v_fetch[key] = self.v_fetch[key] | used if key in self.v_fetch else used

    def row_pass(self, head: int) -> np.ndarray:
        """Per query row of `head`: 1 if the requant decision deferred it, else 0."""
        passes = np.zeros(len(self.q_rows), dtype=np.int64)
        if head in self.deferred:
            passes[self.deferred[head]] = 1
        return passes

    def token_row(self) -> tuple[np.ndarray, np.ndarray]:
        """Views of (dropped_at, importance) of the token state this frame reads and writes."""
        return self.state.token_row(self.layer, self.kv_group or 0)

    @property
    def end(self) -> int:
        """Length of the sequence so far (keep counts and token protections count from here)."""
        return self.seq_end

    def group_alive(self, kv_head: int, group_size: int) -> bool:
        return bool(self.heads_alive[kv_head * group_size : (kv_head + 1) * group_size].any())


def _as_index(rows: np.ndarray) -> slice | np.ndarray:
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows
