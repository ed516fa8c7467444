"""Fixed-point formats of the attention datapath (the numerics contract, see docs/numerics.md).

Every constant here is part of the bit-exact contract between the Numba simulator and the
generated HLS C++. They are plain module-level ints so Numba freezes them into the kernels.

Caveat: Numba's on-disk cache keys on the kernel's own source file, so after editing a
constant here clear ``NUMBA_CACHE_DIR`` (the constants are fixed by the contract anyway).
"""

from __future__ import annotations

import math

from numba import njit

# --- scores -------------------------------------------------------------------------------
#: Fraction bits of a scaled attention score: score_code = round(q.k / sqrt(d) * 2**SCORE_FRAC).
SCORE_FRAC = 10
#: Total width of a score code (signed, two's complement): Q13.10 in an ap_int<24>.
SCORE_BITS = 24
#: Width of the unsigned real-to-fixed score multiplier M (2**(MULT_BITS-1) <= M < 2**MULT_BITS).
MULT_BITS = 23
#: |Q.K accumulator| must stay below 2**QK_ACC_BITS so that |acc| * M + 2**61 < 2**63.
QK_ACC_BITS = 38

# --- exp tables ---------------------------------------------------------------------------
#: Integer bits of the exp argument x = (max - score) in score units: exp(-x) is taken as 0
#: for x >= 2**EXP_INT_BITS (i.e. x_code >= 2**(EXP_INT_BITS + SCORE_FRAC)).
EXP_INT_BITS = 4
#: Fraction bits of the exp tables and of the exp output e (UQ1.16, exp(0) = 2**16).
EXP_FRAC = 16

# --- reciprocal ---------------------------------------------------------------------------
#: Bits of the normalised row sum used to index the reciprocal table (top bit always 1).
RECIP_INDEX_BITS = 12
#: Fraction bits of the reciprocal table: RECIP[j] = round(2**RECIP_FRAC / (2**11 + j)).
RECIP_FRAC = 29

# --- probabilities ------------------------------------------------------------------------
#: Fraction bits of a probability code (UQ1.16, 1.0 = 2**16; a code never exceeds 2**16).
PROB_FRAC = 16


def probability_code(p: float) -> int:
    """A probability as a code (UQ1.16, round half up): what the requant decision compares."""
    return math.floor(p * (1 << PROB_FRAC) + 0.5)


@njit(cache=True)
def sym_max(bits: int) -> int:
    """Largest code of a ``bits``-wide symmetric signed format: 2**(bits-1) - 1."""
    return (1 << (bits - 1)) - 1


@njit(cache=True)
def sat_sym(x: int, bits: int) -> int:
    """Saturate the integer ``x`` to the symmetric range [-sym_max(bits), sym_max(bits)]."""
    hi = (1 << (bits - 1)) - 1
    if x > hi:
        return hi
    if x < -hi:
        return -hi
    return x


# --- derived constants (all follow from the ones above) -----------------------------------
#: Largest unmasked score code; unmasked scores saturate to +-SCORE_MAX.
SCORE_MAX = 2 ** (SCORE_BITS - 1) - 1
#: Masked-score sentinel: the one code unmasked scores can never take.
MASKED = -(2 ** (SCORE_BITS - 1))
#: First exp argument code whose exp is flushed to zero.
EXP_DOMAIN = 2 ** (EXP_INT_BITS + SCORE_FRAC)
#: Probability 1.0 as a code.
PROB_ONE = 2**PROB_FRAC
#: Smallest normalised reciprocal-table index t (t in [RECIP_BASE, 2 * RECIP_BASE)).
RECIP_BASE = 2 ** (RECIP_INDEX_BITS - 1)
#: prob shift = bit_length(S) + RECIP_SHIFT_BIAS, so that e * RECIP / 2**shift ~ e * 2**16 / S.
RECIP_SHIFT_BIAS = RECIP_FRAC - RECIP_INDEX_BITS - PROB_FRAC
#: Integers up to this magnitude (exclusive) are exact in float64 (BLAS integer matmuls).
FLOAT64_EXACT_LIMIT = 2**53

assert MASKED == -SCORE_MAX - 1
assert RECIP_SHIFT_BIAS >= 0
