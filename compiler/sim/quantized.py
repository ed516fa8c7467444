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
    layout BLAS multiplies fastest); `v` is [kv_heads, tokens, d]. With progressive
    quantization `k_msb_t` holds the MSB plane widened on chip (msb << lsb_bits) and `k_lsb_t`
    the LSB plane, so that k_msb_t + k_lsb_t == k_t. Scale granularity is one scale per
    (layer, head) and tensor over all token positions given (a static calibration of the
    layer, see docs/numerics.md). `k_scale` and `v_scale` are indexed by *query* head (GQA
    heads of a group share their KV head's scale).
    """

    q: np.ndarray
    k_t: np.ndarray
    v: np.ndarray
    q_scale: np.ndarray
    k_scale: np.ndarray
    v_scale: np.ndarray
    causal: bool
    k_msb_t: np.ndarray | None = None
    k_lsb_t: np.ndarray | None = None

    def v_weights(self) -> np.ndarray:
        """Each head's V scale relative to the layer's largest, as UQ0.16 integers: head
        importance adds |output codes| * weight, so heads with different scales compare."""
        return np.floor(self.v_scale / self.v_scale.max() * 65536 + 0.5).astype(np.int64)


def quantize_layer(inputs: Inputs, layer: int, info: GraphInfo, bits: dict[str, int]
                   ) -> LayerCodes:
    q, q_scale = quantize_heads(inputs[f"q{layer}"], bits["q"])
    k, k_scale = quantize_heads(inputs[f"k{layer}"], bits["k"])
    v, v_scale = quantize_heads(inputs[f"v{layer}"], bits["v"])
    kv_of_head = np.arange(info.num_heads) // info.group_size
    k_t = np.ascontiguousarray(k.transpose(0, 2, 1))
    planes = {}
    lsb_bits = bits.get("k_lsb")
    if lsb_bits:
        step = float(1 << lsb_bits)
        msb_t = np.floor(k_t / step) * step  # msb = k >> lsb_bits (floor), widened back
        planes = {"k_msb_t": msb_t, "k_lsb_t": k_t - msb_t}
    return LayerCodes(
        q=q, k_t=k_t, v=v, q_scale=q_scale,
        k_scale=k_scale[kv_of_head], v_scale=v_scale[kv_of_head],
        causal=info.causal and info.stage == "summarization", **planes,
    )
