"""Host-side quantization of one layer's Q, K, V into integer codes (per-head scales)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from spatten_hls.compiler.ir.graph import GraphInfo
from spatten_hls.compiler.sim.buffers import BufferPool
from spatten_hls.compiler.sim.inputs import Inputs
from spatten_hls.kernels.quantize import quantize_heads


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
    v_scale_ref: float = 1.0  # the largest V scale of the whole model

    def v_weights(self) -> np.ndarray:
        """Each head's V scale relative to the model's largest, as UQ0.16 integers: head
        importance adds |output codes| * weight, i.e. |attention output| in one unit for
        every head and layer (SpAtten sums |E| in real units across layers)."""
        return np.floor(self.v_scale / self.v_scale_ref * 65536 + 0.5).astype(np.int64)


def largest_v_scale(v_arrays: Iterable[np.ndarray], v_bits: int) -> float:
    """max over the given V arrays (layers) and KV heads of the V scale (max|v| / (2**(v_bits-1)
    - 1)); 1.0 when every value is zero."""
    amax = max(float(np.max(np.abs(v))) for v in v_arrays)
    return amax / ((1 << (v_bits - 1)) - 1) if amax > 0 else 1.0


def quantize_layer(
    inputs: Inputs,
    layer: int,
    info: GraphInfo,
    bits: dict[str, int],
    pool: BufferPool | None = None,
    v_scale_ref: float = 1.0,
) -> LayerCodes:
    """Codes of one layer; with `pool`, written into reusable buffers (see `release`)."""

    def buffer(shape: tuple[int, ...]) -> np.ndarray | None:
        return pool.take(shape) if pool is not None else None

    x_q, x_k, x_v = (inputs[f"{t}{layer}"] for t in "qkv")
    q, q_scale = quantize_heads(x_q, bits["q"], out=buffer(x_q.shape))
    k, k_scale = quantize_heads(x_k, bits["k"], out=buffer(x_k.shape))
    v, v_scale = quantize_heads(x_v, bits["v"], out=buffer(x_v.shape))
    kv_of_head = np.arange(info.num_heads) // info.group_size
    k_t = buffer((k.shape[0], k.shape[2], k.shape[1]))
    k_t = np.ascontiguousarray(k.transpose(0, 2, 1)) if k_t is None else k_t
    np.copyto(k_t, k.transpose(0, 2, 1))
    if pool is not None:
        pool.give_back(k)
    planes = {}
    lsb_bits = bits.get("k_lsb")
    if lsb_bits:
        step = float(1 << lsb_bits)
        msb_t = np.floor(k_t / step) * step  # msb = k >> lsb_bits (floor), widened back
        planes = {"k_msb_t": msb_t, "k_lsb_t": k_t - msb_t}
    return LayerCodes(
        q=q,
        k_t=k_t,
        v=v,
        q_scale=q_scale,
        k_scale=k_scale[kv_of_head],
        v_scale=v_scale[kv_of_head],
        causal=info.causal and info.stage == "summarization",
        v_scale_ref=v_scale_ref,
        **planes,
    )


def release(codes: LayerCodes, pool: BufferPool) -> None:
    """Hand a layer's code buffers back once no frame needs them."""
    for array in (codes.q, codes.k_t, codes.v):
        pool.give_back(array)
