"""Score scaling: integer Q.K accumulator -> score code (Q13.10 in 24 bits).

The real multiplier c = s_q * s_k / sqrt(d) * 2**SCORE_FRAC is carried as an integer M of
MULT_BITS bits and a right shift sh: score = sat((acc * M + 2**(sh-1)) >> sh).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import njit, prange

from spatten_hls.kernels.formats import MULT_BITS, QK_ACC_BITS, SCORE_MAX

# Overflow proof for scale_scores: |acc| < 2**QK_ACC_BITS and M < 2**MULT_BITS give
# |acc * M| < 2**61; the rounding offset 2**(sh-1) <= 2**61 (sh <= 62), so the int64 sum
# stays below 2**62 < 2**63.
MAX_SHIFT = 62
assert QK_ACC_BITS + MULT_BITS <= 61 and MAX_SHIFT - 1 <= 61


def scale_multiplier(c: float) -> tuple[int, int]:
    """Integer multiplier (M, sh) with M / 2**sh ~ c, 2**(MULT_BITS-1) <= M < 2**MULT_BITS.

    sh = MULT_BITS - e where c = f * 2**e, f in [0.5, 1) (math.frexp); M = floor(c * 2**sh +
    1/2) computed exactly (round half up). A carry to 2**MULT_BITS renormalises to
    (2**(MULT_BITS-1), sh - 1). The relative error |M / 2**sh - c| / c <= 2**-MULT_BITS.
    Raises ValueError if c is not a finite positive number or sh falls outside [1, 62].
    """
    if not (math.isfinite(c) and c > 0.0):
        raise ValueError(f"score multiplier must be finite and > 0, got {c}")
    _, exponent = math.frexp(c)
    sh = MULT_BITS - exponent
    m = math.floor(Fraction(c) * Fraction(2) ** sh + Fraction(1, 2))
    if m == 2**MULT_BITS:
        m, sh = 2 ** (MULT_BITS - 1), sh - 1
    if not 1 <= sh <= MAX_SHIFT:
        raise ValueError(f"score multiplier {c} needs shift {sh}, outside [1, {MAX_SHIFT}]")
    return int(m), int(sh)


@njit(parallel=True, cache=True)
def scale_scores(acc: np.ndarray, m: int, sh: int) -> np.ndarray:
    """score = sat((acc * m + 2**(sh-1)) >> sh) to +-SCORE_MAX (>> is floor: round half up).

    acc: int64[Lq, Lk] with |acc| < 2**QK_ACC_BITS (checked, ValueError otherwise).
    """
    if m < 0 or m >= (1 << MULT_BITS) or sh < 1 or sh > MAX_SHIFT:
        raise ValueError("scale_scores: multiplier or shift out of range")
    lq, lk = acc.shape
    limit = 1 << QK_ACC_BITS
    for i in range(lq):
        for j in range(lk):
            if acc[i, j] >= limit or acc[i, j] <= -limit:
                raise ValueError("scale_scores: |acc| >= 2**QK_ACC_BITS")
    half = 1 << (sh - 1)
    out = np.empty((lq, lk), dtype=np.int64)
    for i in prange(lq):
        for j in range(lk):
            s = (acc[i, j] * m + half) >> sh
            out[i, j] = min(max(s, -SCORE_MAX), SCORE_MAX)
    return out
