"""Top-k engine: quick-select of the k-th largest value, then an order-preserving filter.

Mirrors SpAtten's top-k engine (paper Alg. 3, Fig. 9): rounds of quick-select partition the
candidates around a pivot into larger / equal / smaller until the k-th largest value theta is
found, with `num_eq` = how many copies of theta belong to the top k. A final pass over the
original array keeps every x > theta plus the *first* `num_eq` elements equal to theta, so ties
go to the lower index and survivors keep their original order.

Pivots come from a 32-bit xorshift generator with a fixed seed (the hardware's random pivot,
made reproducible so that the C++ engine can follow it exactly). Cycle model (the RTL's
TopKLatencyModel): each round costs ceil(n_remaining / P) + TOPK_ROUND_OVERHEAD cycles for
P comparators, and the filter pass ceil(n / P).
"""

from __future__ import annotations

import numpy as np
from numba import njit

TOPK_ROUND_OVERHEAD = 3
PIVOT_SEED = 0x2545F491


@njit(cache=True, nogil=True)
def _xorshift32(state: int) -> int:
    state ^= (state << 13) & 0xFFFFFFFF
    state ^= state >> 17
    state ^= (state << 5) & 0xFFFFFFFF
    return state & 0xFFFFFFFF


@njit(cache=True, nogil=True)
def kth_largest(values: np.ndarray, k: int, parallelism: int) -> tuple[int, int, int, int]:
    """(theta, num_eq, rounds, cycles) for the k-th largest of int64 `values` (1 <= k <= n)."""
    n = values.shape[0]
    cand = values.copy()
    size = n
    target = k
    state = PIVOT_SEED
    rounds = 0
    cycles = 0
    while True:
        state = _xorshift32(state)
        pivot = cand[state % size]
        rounds += 1
        cycles += (size + parallelism - 1) // parallelism + TOPK_ROUND_OVERHEAD
        greater = 0
        equal = 0
        for i in range(size):
            if cand[i] > pivot:
                greater += 1
            elif cand[i] == pivot:
                equal += 1
        if greater >= target:  # pivot too small: continue among the larger values
            keep_greater = True
        elif greater + equal >= target:
            return pivot, target - greater, rounds, cycles
        else:  # pivot too large: continue among the smaller values
            keep_greater = False
            target -= greater + equal
        out = 0
        for i in range(size):
            if (cand[i] > pivot) if keep_greater else (cand[i] < pivot):
                cand[out] = cand[i]
                out += 1
        size = out


@njit(cache=True, nogil=True)
def topk_mask(values: np.ndarray, k: int, parallelism: int) -> tuple[np.ndarray, int, int]:
    """Boolean mask of the k largest (ties to the lower index), quick-select rounds, cycles."""
    n = values.shape[0]
    mask = np.zeros(n, dtype=np.bool_)
    if k >= n:
        mask[:] = True
        return mask, 0, 0
    if k <= 0:
        return mask, 0, 0
    theta, num_eq, rounds, cycles = kth_largest(values, k, parallelism)
    for i in range(n):
        if values[i] > theta:
            mask[i] = True
        elif values[i] == theta and num_eq > 0:
            mask[i] = True
            num_eq -= 1
    return mask, rounds, cycles + (n + parallelism - 1) // parallelism


def topk_reference(values: np.ndarray, k: int) -> np.ndarray:
    """Sorted reference: stable sort by value descending, ties to the lower index."""
    order = np.lexsort((np.arange(len(values)), -np.asarray(values, dtype=np.int64)))
    mask = np.zeros(len(values), dtype=bool)
    mask[order[: max(k, 0)]] = True
    return mask
