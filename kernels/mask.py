"""Causal masking of score codes with the MASKED sentinel."""

from __future__ import annotations

import numpy as np
from numba import njit

from spatten_hls.kernels.formats import MASKED


@njit(cache=True)
def causal_mask(scores: np.ndarray, q_offset: int) -> np.ndarray:
    """Return a copy of ``scores`` with (i, j) set to MASKED where j > i + q_offset.

    Query row i sits at absolute position i + q_offset, key j at position j; a query sees
    the keys at or before its own position.
    """
    lq, lk = scores.shape
    out = scores.copy()
    for i in range(lq):
        for j in range(max(i + q_offset + 1, 0), lk):
            out[i, j] = MASKED
    return out


@njit(cache=True)
def mask_beyond(scores: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Return a copy of ``scores`` with (i, j) set to MASKED where j >= visible[i].

    The general causal mask when key columns are a sorted subset of positions (after token
    pruning): visible[i] is the number of keys at or before query i's position.
    """
    lq, lk = scores.shape
    out = scores.copy()
    for i in range(lq):
        for j in range(max(visible[i], 0), lk):
            out[i, j] = MASKED
    return out
