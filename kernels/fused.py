"""Fused kernels: the same arithmetic as a chain of engines, in one pass over memory.

`scaled_softmax` computes scale -> (causal mask) -> softmax exactly as `scale_scores`,
`causal_mask` and `softmax_rows` do one after another, but row by row without materializing
the score matrix; it reads the Q·K accumulator as float64 holding exact integers (what the
BLAS product gives) and writes probability codes as float64 (exact, <= 2**16) ready for the
prob·V product. tests/kernels/test_fused.py proves it bit-identical to the unfused chain.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spatten_hls.kernels.formats import (
    PROB_ONE,
    QK_ACC_BITS,
    RECIP_BASE,
    SCORE_MAX,
    sym_max,
)
from spatten_hls.kernels.qk import check_float64_exact
from spatten_hls.kernels.scale import MAX_SHIFT
from spatten_hls.kernels.softmax import exp_fixed, reciprocal


def qk_accumulate_f64(
    q: np.ndarray, k: np.ndarray, q_bits: int, k_bits: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Exact integer Q·K^T of codes held in float64, as float64 (see `kernels.qk.qk_scores`).

    q [Lq, d] and k [Lk, d] hold integer codes of at most `q_bits` / `k_bits` bits; the
    exactness bound d * max|q| * max|k| < 2**53 is proved from the widths. Pass k as the
    transpose of a C-contiguous [d, Lk] array: BLAS then runs its fastest path. `out`, if
    given, receives the result (reusing memory avoids page faults on every call).
    """
    if q.shape[1] != k.shape[1]:
        raise ValueError(f"head dims differ: q {q.shape}, k {k.shape}")
    check_float64_exact(q.shape[1], sym_max(q_bits), sym_max(k_bits), "qk_accumulate_f64")
    return np.matmul(q, k.T, out=out)


@njit(cache=True)
def _scale_one(a: float, m: int, sh: int, half: int) -> int:
    return min(max((np.int64(a) * m + half) >> sh, -SCORE_MAX), SCORE_MAX)


@njit(cache=True)
def _softmax_row_fused(
    acc: np.ndarray,
    i: int,
    visible: int,
    m: int,
    sh: int,
    tables: tuple,
    exps: np.ndarray,
    out: np.ndarray,
) -> bool:
    """Row i: keys 0..visible-1 take part, the rest are masked (probability 0).

    Returns False (row not written) if a visible |acc| >= 2**QK_ACC_BITS: the caller raises
    after its parallel loop (an exception raised inside a prange escapes as a SystemError).
    """
    exp_hi, exp_lo, recip = tables
    half = 1 << (sh - 1)
    row = acc[i]
    top = row[0]
    low = row[0]
    for j in range(visible):  # scaling is monotone: the max score is the scaled max acc
        top = max(top, row[j])
        low = min(low, row[j])
    limit = float(1 << QK_ACC_BITS)
    if top >= limit or low <= -limit:
        return False
    best = _scale_one(top, m, sh, half)
    total = 0
    for j in range(visible):
        e = exp_fixed(best - _scale_one(row[j], m, sh, half), exp_hi, exp_lo)
        exps[j] = e
        total += e
    r, shift, round_half = reciprocal(total, recip)
    for j in range(visible):
        out[i, j] = min((exps[j] * r + round_half) >> shift, PROB_ONE)
    for j in range(visible, acc.shape[1]):
        out[i, j] = 0.0
    return True


def scaled_softmax(
    acc: np.ndarray,
    m: int,
    sh: int,
    mask_offset: int,
    has_mask: bool,
    exp_hi: np.ndarray,
    exp_lo: np.ndarray,
    recip: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Probability codes (float64 holding exact UQ1.16 integers) of each row of `acc`.

    With `has_mask`, row i sees keys j <= i + mask_offset (the causal mask). `out`, if given,
    receives the result.
    """
    lq, lk = acc.shape
    if has_mask and mask_offset < 0:
        raise ValueError("scaled_softmax: a causal row would see no key")
    rows = np.arange(lq, dtype=np.int64)
    visible = np.minimum(rows + mask_offset + 1, lk) if has_mask else np.full(lq, lk, np.int64)
    return scaled_softmax_visible(acc, m, sh, visible, exp_hi, exp_lo, recip, out)


def scaled_softmax_visible(
    acc: np.ndarray,
    m: int,
    sh: int,
    visible: np.ndarray,
    exp_hi: np.ndarray,
    exp_lo: np.ndarray,
    recip: np.ndarray,
    out: np.ndarray | None = None,
    threads: bool = True,
) -> np.ndarray:
    """As `scaled_softmax`, with row i seeing keys 0..visible[i]-1 (a general causal mask:
    key columns sorted by position, visible[i] = keys at or before query i's position).

    `threads=False` runs one thread without the GIL (for callers that run several heads in
    parallel themselves); the result is the same.
    """
    if out is None:
        out = np.empty(acc.shape, dtype=np.float64)
    if out.shape != acc.shape:
        raise ValueError(f"scaled_softmax: out {out.shape} does not match acc {acc.shape}")
    visible = np.ascontiguousarray(visible, dtype=np.int64)
    if visible.shape != (acc.shape[0],) or (
        len(visible) and (visible.min() < 1 or visible.max() > acc.shape[1])
    ):
        raise ValueError("scaled_softmax: every row must see between 1 and Lk keys")
    kernel = _scaled_softmax_into if threads else _scaled_softmax_into_serial
    kernel(acc, m, sh, visible, exp_hi, exp_lo, recip, out)
    return out


@njit(cache=True, nogil=True)
def _scaled_softmax_into_serial(
    acc: np.ndarray,
    m: int,
    sh: int,
    visible: np.ndarray,
    exp_hi: np.ndarray,
    exp_lo: np.ndarray,
    recip: np.ndarray,
    out: np.ndarray,
) -> None:
    if sh < 1 or sh > MAX_SHIFT or recip.shape[0] != RECIP_BASE:
        raise ValueError("scaled_softmax: shift or table size out of range")
    tables = (exp_hi, exp_lo, recip)
    for i in range(acc.shape[0]):
        exps = np.empty(visible[i], dtype=np.int64)
        if not _softmax_row_fused(acc, i, visible[i], m, sh, tables, exps, out):
            raise ValueError("scaled_softmax: |acc| >= 2**QK_ACC_BITS")


@njit(parallel=True, cache=True)
def _scaled_softmax_into(
    acc: np.ndarray,
    m: int,
    sh: int,
    visible: np.ndarray,
    exp_hi: np.ndarray,
    exp_lo: np.ndarray,
    recip: np.ndarray,
    out: np.ndarray,
) -> None:
    if sh < 1 or sh > MAX_SHIFT or recip.shape[0] != RECIP_BASE:
        raise ValueError("scaled_softmax: shift or table size out of range")
    lq = acc.shape[0]
    tables = (exp_hi, exp_lo, recip)
    in_range = np.ones(lq, dtype=np.bool_)
    for i in prange(lq):
        exps = np.empty(visible[i], dtype=np.int64)
        in_range[i] = _softmax_row_fused(acc, i, visible[i], m, sh, tables, exps, out)
    if not np.all(in_range):
        raise ValueError("scaled_softmax: |acc| >= 2**QK_ACC_BITS")


def pv_accumulate_f64(
    probs: np.ndarray, v: np.ndarray, v_bits: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Exact sum_j p_ij v_jd of integers held in float64 (probs <= 2**PROB_FRAC), as float64."""
    if probs.shape[1] != v.shape[0]:
        raise ValueError(f"probs {probs.shape} and v {v.shape} do not chain")
    check_float64_exact(probs.shape[1], PROB_ONE, sym_max(v_bits), "pv_accumulate_f64")
    return np.matmul(probs, v, out=out)
