"""Host-side quantization of one layer's Q, K, V into integer codes (per-head scales)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.graph import GraphInfo
from compiler.sim.inputs import Inputs
from kernels.quantize import quantize_heads


@dataclass(frozen=True)
class LayerCodes:
    """One layer's integer codes (held in float64, exact) and their scales.

    `q` is [heads, tokens, d]; `k_t` is [kv_heads, d, tokens] (K transposed, C-contiguous, the
    layout BLAS multiplies fastest); `v` is [kv_heads, tokens, d]. Scale granularity is one
    scale per (layer, head) and tensor over all token positions given (a static calibration
    of the layer, see docs/numerics.md). `k_scale` and `v_scale` are indexed by *query* head
    (GQA heads of a group share their KV head's scale).
    """

    q: np.ndarray
    k_t: np.ndarray
    v: np.ndarray
    q_scale: np.ndarray
    k_scale: np.ndarray
    v_scale: np.ndarray
    causal: bool


def quantize_layer(inputs: Inputs, layer: int, info: GraphInfo, bits: dict[str, int]
                   ) -> LayerCodes:
    q, q_scale = quantize_heads(inputs[f"q{layer}"], bits["q"])
    k, k_scale = quantize_heads(inputs[f"k{layer}"], bits["k"])
    v, v_scale = quantize_heads(inputs[f"v{layer}"], bits["v"])
    kv_of_head = np.arange(info.num_heads) // info.group_size
    return LayerCodes(
        q=q, k_t=np.ascontiguousarray(k.transpose(0, 2, 1)), v=v, q_scale=q_scale,
        k_scale=k_scale[kv_of_head], v_scale=v_scale[kv_of_head],
        causal=info.causal and info.stage == "summarization",
    )
