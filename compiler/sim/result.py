"""What a simulation produced: a record per layer and step, per-layer summaries, DRAM traffic,
outputs, and the error against float64."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spatten_hls.compiler.ir.graph import GraphInfo
from spatten_hls.compiler.sim.quantized import LayerCodes

PLANES = ("q", "k_msb", "k_lsb", "v")


@dataclass(frozen=True)
class RowProfile:
    """Per-row facts of one layer invocation for the cycle model (perf/cycles.py); not part of
    the JSON. Query rows are the same for every live head."""

    end: int  # sequence length: the token state scanned
    keys: int  # visible keys
    visible: np.ndarray  # per query row: the keys it attends to
    heads: tuple[int, ...]  # live query heads, ascending
    deferred_visible: np.ndarray  # per deferred (head, row), in pipeline order: its visible keys
    deferred_kv_heads: int  # KV heads with a deferred row
    value_topk_cycles: int  # the value top-k engine's cycles over every row
    v_rows: tuple[int, int]  # V rows fetched per pass (one tile: the per-KV-head unions)
    token_selected: bool  # the token top-k ran after the layer
    head_candidates: int  # live heads the head top-k chose among (0: it did not run)


@dataclass(frozen=True)
class StepRecord:
    """What one layer did in one step (summarization has one step, generation one per token).

    Counts are what the engines did: pruned tokens and heads are not in them.
    """

    step: int
    layer: int
    query_rows: int  # query rows per live head
    keys: int  # keys visible to the layer
    heads: int  # live query heads
    kv_heads: int  # KV heads with a live query head (their K and V are fetched)
    pairs: int  # (query, visible key) pairs over live heads: Q·K dot products, softmax scores
    values: int  # V rows multiplied by prob·V (after value pruning)
    prob_rows: int  # (query, head) rows through the requant decision
    requant_rows: int  # ... of which were recomputed with the full K
    topk_cycles: int | None  # token/head top-k engine cycles (None: the graph has no plan)
    dram_bytes: dict[str, int]  # per plane, fetched in this step by this layer
    rows: RowProfile | None = field(default=None, compare=False, repr=False)
    # per-KV-head selection: the KV head this record's frame ran (a layer invocation runs its
    # KV heads one after another, a record each); None: every KV head in one record
    kv_group: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "layer": self.layer,
            "query_rows": self.query_rows,
            "keys": self.keys,
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "pairs": self.pairs,
            "values": self.values,
            "prob_rows": self.prob_rows,
            "requant_rows": self.requant_rows,
            "topk_cycles": self.topk_cycles,
            "dram_bytes": dict(self.dram_bytes),
            **({} if self.kv_group is None else {"kv_group": self.kv_group}),
        }


@dataclass
class LayerRecord:
    layer: int
    tokens_in: int
    kept_tokens: list[int]
    heads_kept: list[int]
    values_fetched: int
    requant_fraction: float
    rel_err_vs_float: float | None = None
    heads_in: int = 0
    topk_cycles: int | None = 0
    # per-KV-head selection: each KV head's own cache (kept_tokens is then their union)
    kv_head_kept_tokens: list[list[int]] | None = None

    @property
    def kept_count(self) -> int:
        """Tokens a cache of the layer keeps (per KV head: the largest of them)."""
        if self.kv_head_kept_tokens is None:
            return len(self.kept_tokens)
        return max(len(kept) for kept in self.kv_head_kept_tokens)

    def as_dict(self) -> dict[str, Any]:
        per_kv_head = self.kv_head_kept_tokens
        return {
            "layer": self.layer,
            "tokens_in": self.tokens_in,
            "kept_tokens": self.kept_tokens,
            **({} if per_kv_head is None else {"kv_head_kept_tokens": per_kv_head}),
            "heads_in": self.heads_in,
            "heads_kept": self.heads_kept,
            "values_fetched": self.values_fetched,
            "requant_fraction": self.requant_fraction,
            "topk_cycles": self.topk_cycles,
            "rel_err_vs_float": self.rel_err_vs_float,
        }


@dataclass
class SimResult:
    info: GraphInfo
    seed: int | None
    layers: list[LayerRecord]
    dram_bytes: dict[str, int]
    dense_dram_bytes: int
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]  # out{L}: dequantized float32 [heads, tokens, d]
    out_codes: dict[str, np.ndarray]  # out{L}: integer output codes (V's scale)
    references: dict[str, np.ndarray] = field(default_factory=dict)  # ref{L}
    pruning_state: object = None  # the final PruningState (token / head drops, importances)
    steps: list[StepRecord] = field(default_factory=list)  # in execution order
    codes: list[LayerCodes] = field(default_factory=list)  # the codes used, if kept

    def layer_steps(self, layer: int) -> list[StepRecord]:
        return [s for s in self.steps if s.layer == layer]

    @property
    def rel_err_vs_float(self) -> float | None:
        """max |y_sim - y_float| / max |y_float| over every computed row of every layer."""
        if not self.references:
            return None
        diff = max(
            float(
                np.max(
                    np.abs(self.outputs[f"out{i}"].astype(np.float64) - self.references[f"ref{i}"])
                )
            )
            for i in range(self.info.num_layers)
        )
        scale = max(float(np.max(np.abs(r))) for r in self.references.values())
        return diff / scale if scale > 0 else diff

    @property
    def dram_reduction(self) -> float:
        return self.dense_dram_bytes / max(self.dram_bytes["total"], 1)

    @property
    def kv_entries(self) -> tuple[int, int]:
        """(KV entries read, what dense attention reads), summed over layers and steps: a
        layer reads its visible keys once per KV head with a live query head; dense reads
        every position so far of every KV head (a per-KV-head record: of its KV head)."""
        read = sum(s.keys * s.kv_heads for s in self.steps)
        dense = sum(
            s.rows.end * (self.info.num_kv_heads if s.kv_group is None else 1) for s in self.steps
        )
        return read, dense

    @property
    def kv_read_fraction(self) -> float:
        read, dense = self.kv_entries
        return read / dense if dense else 1.0

    def to_json_dict(self) -> dict[str, Any]:
        i = self.info
        layers = []
        for record in self.layers:
            doc = record.as_dict()
            doc["steps"] = [s.as_dict() for s in self.layer_steps(record.layer)]
            layers.append(doc)
        return {
            "model": i.model,
            "stage": i.stage,
            "seq_len": i.seq_len,
            "gen_tokens": i.gen_tokens if i.stage == "generation" else 0,
            "layers_count": i.num_layers,
            "heads": i.num_heads,
            "kv_heads": i.num_kv_heads,
            "head_dim": i.head_dim,
            "seed": self.seed,
            "layers": layers,
            "dram_bytes": dict(self.dram_bytes),
            "dense_dram_bytes": self.dense_dram_bytes,
            "dram_reduction": round(self.dram_reduction, 6),
            "kv_read_fraction": round(self.kv_read_fraction, 6),
            "rel_err_vs_float": self.rel_err_vs_float,
        }

    def arrays_to_save(self) -> dict[str, np.ndarray]:
        arrays = dict(self.inputs)
        arrays.update({k: v.astype(np.float32) for k, v in self.outputs.items()})
        arrays.update({k: v.astype(np.float32) for k, v in self.references.items()})
        return arrays
