"""Host-side quantization of one layer's Q, K, V into integer codes (per-head scales)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.ir.graph import GraphInfo
from spatten_hls.compiler.ir.plan import BitWidths
from spatten_hls.compiler.sim.buffers import BufferPool
from spatten_hls.compiler.sim.inputs import Inputs
from spatten_hls.kernels.formats import SCORE_FRAC
from spatten_hls.kernels.quantize import quantize_heads
from spatten_hls.kernels.scale import scale_multiplier


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
    mult: np.ndarray  # per query head: the score multiplier M and shift sh (kernels/scale.py)
    shift: np.ndarray
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


def score_multipliers(
    q_scale: np.ndarray, k_scale: np.ndarray, factor: float, layer: int
) -> tuple[np.ndarray, np.ndarray]:
    """(M, sh) per head of c = s_q * s_k * factor * 2**SCORE_FRAC: the one place the host's
    score multiplier is formed (the testbench's golden vectors carry these)."""
    mult, shift = [], []
    for head, (sq, sk) in enumerate(zip(q_scale, k_scale, strict=True)):
        try:
            m, sh = scale_multiplier(sq * sk * factor * 2.0**SCORE_FRAC)
        except ValueError as exc:  # inputs scaled far outside what the score format carries
            raise SimulationError(
                f"layer {layer} head {head}: Q and K scales {sq:.3g} and {sk:.3g} are out of "
                f"range for the score datapath ({exc}); rescale the inputs"
            ) from None
        mult.append(m)
        shift.append(sh)
    return np.array(mult, dtype=np.int64), np.array(shift, dtype=np.int64)


def k_planes(k_t: np.ndarray, lsb_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The MSB plane (msb = k >> lsb_bits, floor) and the LSB plane of K codes: DRAM holds K
    as these two arrays."""
    step = float(1 << lsb_bits)
    msb = np.floor(k_t / step)
    return msb, k_t - msb * step


def quantize_rows(x: np.ndarray, scales: np.ndarray, bits: int) -> np.ndarray:
    """Codes of x [heads, d] with fixed per-head scales (saturating), as float64 integers."""
    qmax = (1 << (bits - 1)) - 1
    return np.clip(np.rint(x.astype(np.float64) / scales[:, None]), -qmax, qmax)


def quantize_layer(
    inputs: Inputs,
    layer: int,
    info: GraphInfo,
    bits: BitWidths,
    factor: float,
    pool: BufferPool | None = None,
    v_scale_ref: float = 1.0,
) -> LayerCodes:
    """Codes of one layer; with `pool`, written into reusable buffers (see `release`).
    `factor` is the graph's score factor (1/sqrt(d)), folded into the score multipliers."""

    def buffer(shape: tuple[int, ...]) -> np.ndarray | None:
        return pool.take(shape) if pool is not None else None

    x_q, x_k, x_v = (inputs[f"{t}{layer}"] for t in "qkv")
    q, q_scale = quantize_heads(x_q, bits.q, out=buffer(x_q.shape))
    k, k_scale = quantize_heads(x_k, bits.k, out=buffer(x_k.shape))
    v, v_scale = quantize_heads(x_v, bits.v, out=buffer(x_v.shape))
    kv_of_head = np.arange(info.num_heads) // info.group_size
    k_t = buffer((k.shape[0], k.shape[2], k.shape[1]))
    k_t = np.ascontiguousarray(k.transpose(0, 2, 1)) if k_t is None else k_t
    np.copyto(k_t, k.transpose(0, 2, 1))
    if pool is not None:
        pool.give_back(k)
    planes = {}
    if bits.progressive:
        msb, lsb = k_planes(k_t, bits.k_lsb)
        planes = {"k_msb_t": msb * float(1 << bits.k_lsb), "k_lsb_t": lsb}  # MSBs widened
    mult, shift = score_multipliers(q_scale, k_scale[kv_of_head], factor, layer)
    return LayerCodes(
        q=q,
        k_t=k_t,
        v=v,
        q_scale=q_scale,
        k_scale=k_scale[kv_of_head],
        v_scale=v_scale[kv_of_head],
        causal=info.causal and info.stage == "summarization",
        mult=mult,
        shift=shift,
        v_scale_ref=v_scale_ref,
        **planes,
    )


def release(codes: LayerCodes, pool: BufferPool) -> None:
    """Hand a layer's code buffers back once no frame needs them."""
    for array in (codes.q, codes.k_t, codes.v):
        pool.give_back(array)
