"""Softmax engine on score codes: two-table exp, table reciprocal, UQ1.PROB_FRAC probabilities.

Per row: m = max unmasked score; e_j = EXP(m - s_j) (UQ1.16, 0 when masked or when
m - s_j >= EXP_DOMAIN); S = sum e_j (>= 2**16: the max entry gives exactly 2**16);
n = bit_length(S); t = S >> (n - RECIP_INDEX_BITS); r = RECIP[t - RECIP_BASE];
shift = n + RECIP_SHIFT_BIAS; p_j = min((e_j * r + 2**(shift-1)) >> shift, 2**PROB_FRAC).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spatten_hls.kernels.formats import (
    EXP_DOMAIN,
    EXP_FRAC,
    EXP_INT_BITS,
    MASKED,
    PROB_ONE,
    RECIP_BASE,
    RECIP_INDEX_BITS,
    RECIP_SHIFT_BIAS,
    SCORE_FRAC,
)

_LO_MASK = (1 << SCORE_FRAC) - 1
_EXP_HALF = 1 << (EXP_FRAC - 1)


@njit(cache=True)
def bit_length(v: int) -> int:
    """Number of bits of the non-negative integer v (0 for 0); an integer loop, no libm."""
    n = 0
    while v > 0:
        v >>= 1
        n += 1
    return n


@njit(cache=True)
def reciprocal(total: int, recip: np.ndarray) -> tuple[int, int, int]:
    """(r, shift, rounding half) with p = min((e * r + half) >> shift, 2**PROB_FRAC) ~ e / total:
    n = bit length of total, r = RECIP[(total >> (n - RECIP_INDEX_BITS)) - RECIP_BASE]."""
    n = bit_length(total)
    r = recip[(total >> (n - RECIP_INDEX_BITS)) - RECIP_BASE]
    shift = n + RECIP_SHIFT_BIAS
    return r, shift, 1 << (shift - 1)


@njit(cache=True)
def exp_fixed(x: int, exp_hi: np.ndarray, exp_lo: np.ndarray) -> int:
    """exp(-x / 2**SCORE_FRAC) in UQ1.EXP_FRAC for a code x >= 0 (0 for x >= EXP_DOMAIN)."""
    if x >= EXP_DOMAIN:
        return 0
    return (exp_hi[x >> SCORE_FRAC] * exp_lo[x & _LO_MASK] + _EXP_HALF) >> EXP_FRAC


@njit(cache=True)
def exp_fixed_codes(x: np.ndarray, exp_hi: np.ndarray, exp_lo: np.ndarray) -> np.ndarray:
    """Elementwise :func:`exp_fixed` of a 1-D int64 array (used to measure the table error)."""
    out = np.empty(x.shape[0], dtype=np.int64)
    for i in range(x.shape[0]):
        out[i] = exp_fixed(x[i], exp_hi, exp_lo)
    return out


@njit(cache=True)
def _softmax_row(
    row: np.ndarray, out: np.ndarray, exp_hi: np.ndarray, exp_lo: np.ndarray, recip: np.ndarray
) -> None:
    m = MASKED
    for j in range(row.shape[0]):
        if row[j] != MASKED and row[j] > m:
            m = row[j]
    total = 0
    for j in range(row.shape[0]):
        e = 0 if row[j] == MASKED else exp_fixed(m - row[j], exp_hi, exp_lo)
        out[j] = e
        total += e
    r, shift, half = reciprocal(total, recip)
    for j in range(row.shape[0]):
        out[j] = min((out[j] * r + half) >> shift, PROB_ONE)


@njit(parallel=True, cache=True)
def softmax_rows(
    scores: np.ndarray, exp_hi: np.ndarray, exp_lo: np.ndarray, recip: np.ndarray
) -> np.ndarray:
    """Fixed-point softmax of each row of int64 score codes -> int64 prob codes (UQ1.16).

    Masked entries (== MASKED) get probability 0. Every row needs an unmasked entry
    (ValueError otherwise); tables must have the contract's sizes (ValueError otherwise).
    """
    if (
        exp_hi.shape[0] != 1 << EXP_INT_BITS
        or exp_lo.shape[0] != 1 << SCORE_FRAC
        or recip.shape[0] != RECIP_BASE
    ):
        raise ValueError("softmax_rows: table sizes do not match the formats")
    lq, lk = scores.shape
    for i in range(lq):
        unmasked = False
        for j in range(lk):
            if scores[i, j] != MASKED:
                unmasked = True
                break
        if not unmasked:
            raise ValueError("softmax_rows: a row has no unmasked entry")
    out = np.empty((lq, lk), dtype=np.int64)
    for i in prange(lq):
        _softmax_row(scores[i], out[i], exp_hi, exp_lo, recip)
    return out


@njit(cache=True)
def softmax_row_max(probs: np.ndarray) -> np.ndarray:
    """Largest probability code of each row (input of the progressive-quantization decision)."""
    lq, lk = probs.shape
    out = np.zeros(lq, dtype=np.int64)
    for i in range(lq):
        best = 0
        for j in range(lk):
            best = max(best, probs[i, j])
        out[i] = best
    return out
