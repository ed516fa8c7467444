"""Exp and reciprocal tables: the single source for the simulator and the C++ params.h.

Generated once in float64 and rounded half up (floor(v + 0.5)); returned as read-only int64
arrays (cached, so every caller sees the very same values).

- EXP_HI[h] = round(exp(-h) * 2**EXP_FRAC),                h in [0, 2**EXP_INT_BITS)
- EXP_LO[f] = round(exp(-f / 2**SCORE_FRAC) * 2**EXP_FRAC), f in [0, 2**SCORE_FRAC)
- RECIP[j]  = round(2**RECIP_FRAC / (2**(RECIP_INDEX_BITS-1) + j)), j in [0, 2**(RIB-1))
"""

from __future__ import annotations

import functools

import numpy as np

from spatten_hls.kernels.formats import EXP_FRAC, EXP_INT_BITS, RECIP_BASE, RECIP_FRAC, SCORE_FRAC


def _round_half_up(values: np.ndarray) -> np.ndarray:
    out = np.floor(values + 0.5).astype(np.int64)
    out.setflags(write=False)
    return out


@functools.cache
def exp_hi_table() -> np.ndarray:
    """EXP_HI: exp of the integer part of the exp argument, UQ1.EXP_FRAC."""
    h = np.arange(2**EXP_INT_BITS, dtype=np.float64)
    return _round_half_up(np.exp(-h) * 2.0**EXP_FRAC)


@functools.cache
def exp_lo_table() -> np.ndarray:
    """EXP_LO: exp of the fractional part of the exp argument, UQ1.EXP_FRAC."""
    f = np.arange(2**SCORE_FRAC, dtype=np.float64)
    return _round_half_up(np.exp(-f / 2.0**SCORE_FRAC) * 2.0**EXP_FRAC)


@functools.cache
def recip_table() -> np.ndarray:
    """RECIP: 2**RECIP_FRAC / t for the normalised index t = RECIP_BASE + j."""
    t = RECIP_BASE + np.arange(RECIP_BASE, dtype=np.float64)
    return _round_half_up(2.0**RECIP_FRAC / t)


def softmax_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(EXP_HI, EXP_LO, RECIP) in the argument order of softmax_rows."""
    return exp_hi_table(), exp_lo_table(), recip_table()
