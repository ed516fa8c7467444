"""Q x K^T engine: exact integer dot products of Q and K codes.

The fast path runs the integer matmul through float64 BLAS. It is exact because every
product and every partial sum, in whatever order BLAS adds them, is an integer of magnitude
at most sum_d |q_id| |k_jd| <= d * max|q| * max|k|, and integers below 2**53 are exact in
float64. That bound is checked before the matmul (ExactnessError otherwise).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spatten_hls.kernels.formats import FLOAT64_EXACT_LIMIT


class ExactnessError(ValueError):
    """An integer matmul through float64 could lose bits (a partial sum may reach 2**53)."""


def as_int_matrix(a: np.ndarray, name: str) -> np.ndarray:
    """Return ``a`` as a non-empty 2-D int64 array, rejecting non-integer dtypes."""
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer codes, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def max_abs(a: np.ndarray) -> int:
    """max |a| of an integer array as an exact Python int (no int64 overflow on abs)."""
    return max(abs(int(a.max())), abs(int(a.min())))


def check_float64_exact(terms: int, max_a: int, max_b: int, what: str) -> None:
    """Raise ExactnessError unless terms * max_a * max_b < 2**53 (exact Python ints)."""
    worst = int(terms) * int(max_a) * int(max_b)
    if worst >= FLOAT64_EXACT_LIMIT:
        raise ExactnessError(
            f"{what}: {terms} * {max_a} * {max_b} = {worst} >= 2**53, float64 BLAS not exact"
        )


def qk_scores(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Exact integer Q K^T: q int[Lq, d], k int[Lk, d] -> int64[Lq, Lk].

    Computed as float64 matmul and cast back after proving d * max|q| * max|k| < 2**53.
    """
    qi = as_int_matrix(q, "q")
    ki = as_int_matrix(k, "k")
    if qi.shape[1] != ki.shape[1]:
        raise ValueError(f"head dims differ: q {qi.shape}, k {ki.shape}")
    check_float64_exact(qi.shape[1], max_abs(qi), max_abs(ki), "qk_scores")
    acc = np.matmul(qi.astype(np.float64), ki.astype(np.float64).T)
    return acc.astype(np.int64)


@njit(cache=True)
def qk_scores_loop(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Plain int64 triple loop computing the same Q K^T (reference for the BLAS path)."""
    lq, d = q.shape
    lk = k.shape[0]
    out = np.zeros((lq, lk), dtype=np.int64)
    for i in range(lq):
        for j in range(lk):
            acc = 0
            for t in range(d):
                acc += q[i, t] * k[j, t]
            out[i, j] = acc
    return out
