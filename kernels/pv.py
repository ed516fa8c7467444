"""Prob x V engine: exact integer accumulation and requantization to V codes.

out_code = sat((sum_j p_j v_j + 2**(PROB_FRAC-1)) >> PROB_FRAC); its scale is the V scale
(the probabilities of a row sum to ~1.0 = 2**PROB_FRAC).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spatten_hls.kernels.formats import PROB_FRAC
from spatten_hls.kernels.qk import as_int_matrix, check_float64_exact, max_abs

_PROB_HALF = 1 << (PROB_FRAC - 1)


def pv_accumulate(probs: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Exact sum_j p_ij v_jd: probs int[Lq, Lk], v int[Lk, d] -> int64[Lq, d].

    Runs through float64 BLAS after proving Lk * max p * max|v| < 2**53 (every partial sum is
    an integer no larger than that, hence exact in float64).
    """
    p = as_int_matrix(probs, "probs")
    vi = as_int_matrix(v, "v")
    if p.shape[1] != vi.shape[0]:
        raise ValueError(f"probs {p.shape} and v {vi.shape} do not chain")
    check_float64_exact(p.shape[1], max_abs(p), max_abs(vi), "pv_accumulate")
    acc = np.matmul(p.astype(np.float64), vi.astype(np.float64))
    return acc.astype(np.int64)


@njit(cache=True, nogil=True)
def requantize_output(acc: np.ndarray, v_bits: int) -> np.ndarray:
    """out = sat((acc + 2**(PROB_FRAC-1)) >> PROB_FRAC) to +-(2**(v_bits-1) - 1).

    The one implementation of the output requantization: `acc` holds exact integers, as int64
    or float64 (the simulator's BLAS accumulator); single-threaded and GIL-free, so the
    simulator runs heads in parallel threads.
    """
    if v_bits < 2 or v_bits > 32:
        raise ValueError("requantize_output: v_bits must be in [2, 32]")
    hi = (1 << (v_bits - 1)) - 1
    lq, d = acc.shape
    out = np.empty((lq, d), dtype=np.int64)
    for i in range(lq):
        for t in range(d):
            x = (np.int64(acc[i, t]) + _PROB_HALF) >> PROB_FRAC
            out[i, t] = min(max(x, -hi), hi)
    return out
