"""A-posteriori bound on |attention_head_from_float - attention_float| for one head.

Derivation in docs/numerics.md ("Error bound"). Summary, per query row i (L_i visible keys):

  delta_i  = max_j [ (sum_d |q_id| dk + sum_d |k_jd| dq + d dq dk) / sqrt(d)      (quantization)
                     + (|z_ij| + that) * 2**-(MULT_BITS-1) ]                      (multiplier M)
             + 2**-(SCORE_FRAC+1)                                                 (score rounding)
  eps_sm_i = 2 L_i eps_e + rho + L_i 2**-(PROB_FRAC+1)          (fixed exp, reciprocal, rounding)
  dP_i     = min(exp(2 delta_i) - 1 + eps_sm_i,  2 + rho + L_i 2**-(PROB_FRAC+1))
  bound    = max_i  max|v_hat| dP_i + s_v/2 (V quantization) + s_v/2 (output rounding)

with dq = s_q/2, dk = s_k/2, eps_e the exhaustively measured exp-table error and rho the
exhaustively measured reciprocal relative error. Returns inf if a visible score could saturate.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from spatten_hls.kernels.formats import (
    EXP_DOMAIN,
    EXP_FRAC,
    MULT_BITS,
    PROB_FRAC,
    RECIP_BASE,
    RECIP_FRAC,
    SCORE_FRAC,
    SCORE_MAX,
)
from spatten_hls.kernels.quantize import quantize_symmetric
from spatten_hls.kernels.reference import attention_float, causal_keep
from spatten_hls.kernels.softmax import exp_fixed_codes
from spatten_hls.kernels.tables import exp_hi_table, exp_lo_table, recip_table

# Relative slack for float64 rounding on the host: rint(fl(x / s)) can be off by up to
# 1/2 + qmax * 2**-52 codes (<= 1/2 * (1 + 2**-20) for bits <= 32), and the scales, c and this
# bound's own arithmetic are each ~2**-50 relative; 2**-16 covers all of them.
_FLOAT_SLACK = 2.0**-16
# Absolute slack, in units of max|v| * (Lk + d + max |q_i||k_j| / sqrt(d)), for the float64
# rounding of the reference attention_float itself (its error is ~1e-16 in those units).
_REFERENCE_SLACK = 2.0**-40


@functools.cache
def exp_table_max_error() -> float:
    """eps_e: max |EXP(x) / 2**EXP_FRAC - exp(-x / 2**SCORE_FRAC)| over every code x >= 0.

    Exhaustive over x in [0, EXP_DOMAIN) through the kernel's own exp_fixed; the flushed
    tail x >= EXP_DOMAIN contributes exp(-EXP_DOMAIN / 2**SCORE_FRAC) (= e**-16).
    """
    x = np.arange(EXP_DOMAIN, dtype=np.int64)
    approx = exp_fixed_codes(x, exp_hi_table(), exp_lo_table()) / 2.0**EXP_FRAC
    exact = np.exp(-x / 2.0**SCORE_FRAC)
    tail = math.exp(-EXP_DOMAIN / 2.0**SCORE_FRAC)
    return max(float(np.max(np.abs(approx - exact))), tail)


@functools.cache
def recip_max_rel_error() -> float:
    """rho: max |RECIP[t] * S' / 2**RECIP_FRAC - 1| over t and S' in [t, t + 1).

    S' is the row sum normalised to [RECIP_BASE, 2 RECIP_BASE); the index t = floor(S')
    (truncation, up to 2**-(RECIP_INDEX_BITS-1) relative) and the table rounding both count.
    """
    t = RECIP_BASE + np.arange(RECIP_BASE, dtype=np.float64)
    r = recip_table().astype(np.float64)
    lo = np.abs(r * t / 2.0**RECIP_FRAC - 1.0)
    hi = np.abs(r * (t + 1.0) / 2.0**RECIP_FRAC - 1.0)
    return float(max(lo.max(), hi.max()))


def _score_error_rows(
    q: np.ndarray, k: np.ndarray, s_q: float, s_k: float, keep: np.ndarray
) -> tuple[np.ndarray, float]:
    """(delta_i per row, max visible |z| + delta) for the score-stage error."""
    d = q.shape[1]
    dq, dk = s_q / 2.0, s_k / 2.0
    quant = (
        np.abs(q).sum(axis=1)[:, None] * dk + np.abs(k).sum(axis=1)[None, :] * dq + d * dq * dk
    ) / math.sqrt(d)
    zabs = np.abs(q @ k.T) / math.sqrt(d)
    per_entry = quant + (zabs + quant) * 2.0 ** -(MULT_BITS - 1)
    per_entry = np.where(keep, per_entry, 0.0)
    delta = (per_entry.max(axis=1) + 2.0 ** -(SCORE_FRAC + 1)) * (1.0 + _FLOAT_SLACK)
    reach = float(np.max(np.where(keep, zabs, 0.0) + delta[:, None]))
    return delta, reach


def output_error_bound(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    q_bits: int,
    k_bits: int,
    v_bits: int,
    causal: bool,
    q_offset: int = 0,
) -> float:
    """Rigorous bound on max |out_sim - out_float| (same arguments as attention_head_from_float).

    Returns math.inf when a visible score could reach the score saturation limit.
    """
    qf, kf, vf = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    _, s_q = quantize_symmetric(qf, q_bits)
    _, s_k = quantize_symmetric(kf, k_bits)
    v_codes, s_v = quantize_symmetric(vf, v_bits)
    lq, d = qf.shape
    lk = kf.shape[0]
    keep = causal_keep(lq, lk, q_offset) if causal else np.ones((lq, lk), dtype=bool)
    if not np.all(keep.any(axis=1)):
        raise ValueError("a causal row sees no key (q_offset < 0?)")
    delta, reach = _score_error_rows(qf, kf, s_q, s_k, keep)
    if reach >= SCORE_MAX / 2.0**SCORE_FRAC:
        return math.inf
    n_vis = keep.sum(axis=1).astype(np.float64)
    rho = recip_max_rel_error()
    rounding = n_vis * 2.0 ** -(PROB_FRAC + 1)
    eps_sm = 2.0 * n_vis * exp_table_max_error() + rho + rounding
    d_prob = np.minimum(np.expm1(np.minimum(2.0 * delta, 64.0)) + eps_sm, 2.0 + rho + rounding)
    v_hat_max = s_v * float(np.max(np.abs(v_codes)))
    bound = float(np.max(v_hat_max * d_prob)) + s_v
    v_max = float(np.max(np.abs(vf)))
    qk_abs = float(np.max(np.abs(qf).max(axis=1))) * float(np.abs(kf).sum(axis=1).max())
    ref_slack = _REFERENCE_SLACK * v_max * (lk + d + qk_abs / math.sqrt(d))
    return bound * (1.0 + _FLOAT_SLACK) + ref_slack


def relative_error_bound(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    q_bits: int,
    k_bits: int,
    v_bits: int,
    causal: bool,
    q_offset: int = 0,
) -> float:
    """output_error_bound / max |attention_float| (inf when the float output is all zero)."""
    bound = output_error_bound(q, k, v, q_bits, k_bits, v_bits, causal, q_offset)
    y_max = float(np.max(np.abs(attention_float(q, k, v, causal, q_offset))))
    return bound / y_max if y_max > 0.0 else math.inf
