"""One attention head through the whole fixed-point datapath (convenience for sim and tests)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spatten_hls.kernels.formats import SCORE_FRAC
from spatten_hls.kernels.mask import causal_mask
from spatten_hls.kernels.pv import pv_accumulate, requantize_output
from spatten_hls.kernels.qk import qk_scores
from spatten_hls.kernels.quantize import dequantize, quantize_symmetric
from spatten_hls.kernels.scale import scale_multiplier, scale_scores
from spatten_hls.kernels.softmax import softmax_rows
from spatten_hls.kernels.tables import softmax_tables


@dataclass(frozen=True)
class FixedAttentionInfo:
    """Everything the fixed datapath used and produced for one head."""

    q_scale: float
    k_scale: float
    v_scale: float
    multiplier: float  # c = s_q * s_k * (1 / sqrt(d)) * 2**SCORE_FRAC
    m: int  # integer multiplier M
    sh: int  # right shift
    q_codes: np.ndarray
    k_codes: np.ndarray
    v_codes: np.ndarray
    probs: np.ndarray  # UQ1.PROB_FRAC prob codes [Lq, Lk]
    out_codes: np.ndarray  # output codes [Lq, d], scale v_scale


def attention_head_fixed(
    q_codes: np.ndarray,
    k_codes: np.ndarray,
    v_codes: np.ndarray,
    m: int,
    sh: int,
    v_bits: int,
    causal: bool,
    q_offset: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Q.K -> scale -> (causal mask) -> softmax -> P.V -> requantize, on integer codes.

    Returns (out_codes int64[Lq, d] in V's scale, probs int64[Lq, Lk] UQ1.PROB_FRAC).
    """
    scores = scale_scores(qk_scores(q_codes, k_codes), m, sh)
    if causal:
        scores = causal_mask(scores, q_offset)
    probs = softmax_rows(scores, *softmax_tables())
    out = requantize_output(pv_accumulate(probs, v_codes), v_bits)
    return out, probs


def attention_head_from_float(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    q_bits: int,
    k_bits: int,
    v_bits: int,
    causal: bool,
    q_offset: int = 0,
) -> tuple[np.ndarray, FixedAttentionInfo]:
    """Quantize q, k, v (one scale each), run the fixed datapath, dequantize the output.

    c = s_q * s_k * (1 / sqrt(d)) * 2**SCORE_FRAC becomes (M, sh) via scale_multiplier (the same
    float expression, in the same order, as the simulator's scale handler and the HLS host).
    Returns (output as float64 [Lq, d], FixedAttentionInfo).
    """
    if causal and q_offset < 0:
        raise ValueError(f"q_offset must be >= 0 for causal attention, got {q_offset}")
    q_codes, s_q = quantize_symmetric(q, q_bits)
    k_codes, s_k = quantize_symmetric(k, k_bits)
    v_codes, s_v = quantize_symmetric(v, v_bits)
    if q_codes.ndim != 2 or q_codes.shape[1] != k_codes.shape[1] or k_codes.shape != v_codes.shape:
        raise ValueError(f"bad shapes q {q_codes.shape}, k {k_codes.shape}, v {v_codes.shape}")
    c = s_q * s_k * (1.0 / math.sqrt(q_codes.shape[1])) * 2.0**SCORE_FRAC
    m, sh = scale_multiplier(c)
    out_codes, probs = attention_head_fixed(
        q_codes, k_codes, v_codes, m, sh, v_bits, causal, q_offset
    )
    info = FixedAttentionInfo(s_q, s_k, s_v, c, m, sh, q_codes, k_codes, v_codes, probs, out_codes)
    return dequantize(out_codes, s_v), info
