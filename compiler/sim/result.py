"""What a simulation produced: per-layer records, DRAM traffic, outputs, error vs float."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spatten_hls.compiler.ir.graph import GraphInfo


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
    topk_cycles: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "tokens_in": self.tokens_in,
            "kept_tokens": self.kept_tokens,
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

    def to_json_dict(self) -> dict[str, Any]:
        i = self.info
        doc: dict[str, Any] = {
            "model": i.model,
            "stage": i.stage,
            "seq_len": i.seq_len,
            "gen_tokens": i.gen_tokens if i.stage == "generation" else 0,
            "layers_count": i.num_layers,
            "heads": i.num_heads,
            "kv_heads": i.num_kv_heads,
            "head_dim": i.head_dim,
            "seed": self.seed,
            "layers": [r.as_dict() for r in self.layers],
            "dram_bytes": dict(self.dram_bytes),
            "dense_dram_bytes": self.dense_dram_bytes,
            "dram_reduction": round(self.dram_reduction, 6),
            "rel_err_vs_float": self.rel_err_vs_float,
        }
        return doc

    def arrays_to_save(self) -> dict[str, np.ndarray]:
        arrays = dict(self.inputs)
        arrays.update({k: v.astype(np.float32) for k, v in self.outputs.items()})
        arrays.update({k: v.astype(np.float32) for k, v in self.references.items()})
        return arrays
