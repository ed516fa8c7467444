"""Host-side quantization of one layer's Q, K, V into integer codes (per-head scales)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.graph import GraphInfo
from compiler.sim.inputs import Inputs
from kernels.quantize import quantize_symmetric


@dataclass(frozen=True)
class LayerCodes:
    """Codes [tokens, head_dim] and scales: Q per query head, K and V per KV head.

    Scale granularity is one scale per (layer, head) and tensor, taken over all token
    positions given (a static calibration of the layer, as docs/numerics.md describes).
    `k_scale` and `v_scale` are indexed by *query* head for convenience (GQA shares them).
    """

    q: list[np.ndarray]
    k: list[np.ndarray]
    v: list[np.ndarray]
    q_scale: list[float]
    k_scale: list[float]
    v_scale: list[float]
    causal: bool

    def v_scale_per_head(self) -> np.ndarray:
        return np.array(self.v_scale, dtype=np.float64)


def quantize_layer(inputs: Inputs, layer: int, info: GraphInfo, bits: dict[str, int]
                   ) -> LayerCodes:
    q, qs = zip(*(quantize_symmetric(x, bits["q"]) for x in inputs[f"q{layer}"]), strict=True)
    k, ks = zip(*(quantize_symmetric(x, bits["k"]) for x in inputs[f"k{layer}"]), strict=True)
    v, vs = zip(*(quantize_symmetric(x, bits["v"]) for x in inputs[f"v{layer}"]), strict=True)
    group = info.group_size
    per_head = range(info.num_heads)
    return LayerCodes(
        q=list(q), k=list(k), v=list(v), q_scale=list(qs),
        k_scale=[ks[h // group] for h in per_head], v_scale=[vs[h // group] for h in per_head],
        causal=info.causal and info.stage == "summarization",
    )
