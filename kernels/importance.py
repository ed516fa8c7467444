"""Importance accumulators and selection engines of cascade pruning (integer arithmetic).

Token importance adds probability codes (UQ1.16) column by column; head importance adds
|output codes| weighted by the head's relative V scale (UQ0.16); value top-k keeps the
largest probabilities of each query row. All selections go through the top-k engine
(`kernels.topk`): ties to the lower index, survivors in original order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spatten_hls.kernels.topk import topk_mask


@njit(cache=True, nogil=True)
def add_column_sums(importance: np.ndarray, positions: np.ndarray, probs: np.ndarray) -> None:
    """importance[positions[j]] += sum_i probs[i, j] (probs: float64 holding integer codes)."""
    for j in range(probs.shape[1]):
        total = 0
        for i in range(probs.shape[0]):
            total += np.int64(probs[i, j])
        importance[positions[j]] += total


@njit(cache=True, nogil=True)
def abs_sum(codes: np.ndarray) -> int:
    """sum |code| over an integer array (a head's attention output codes)."""
    total = 0
    for i in range(codes.shape[0]):
        for j in range(codes.shape[1]):
            total += abs(codes[i, j])
    return total


@njit(cache=True, nogil=True)
def select_survivors(
    importance: np.ndarray, protected: np.ndarray, keep: int, parallelism: int
) -> tuple[np.ndarray, int]:
    """Survivor mask of candidates: every protected one, plus the most important of the rest
    up to `keep` in total (at least the protected ones). Returns (mask, cycles): the top-k
    engine's on the unprotected ones, plus the passes that compact them out of the candidates
    and expand its mask back, `parallelism` a cycle (ceil(n / parallelism) each)."""
    n = importance.shape[0]
    n_protected = 0
    for i in range(n):
        if protected[i]:
            n_protected += 1
    free = max(keep - n_protected, 0)
    others = np.empty(n - n_protected, dtype=np.int64)
    where = np.empty(n - n_protected, dtype=np.int64)
    m = 0
    for i in range(n):
        if not protected[i]:
            others[m] = importance[i]
            where[m] = i
            m += 1
    chosen, _, cycles = topk_mask(others, free, parallelism)
    cycles += 2 * ((n + parallelism - 1) // parallelism)
    mask = protected.copy()
    for t in range(m):
        if chosen[t]:
            mask[where[t]] = True
    return mask, cycles


@njit(cache=True, nogil=True)
def keep_recent(protected: np.ndarray, keep: int, parallelism: int) -> tuple[np.ndarray, int]:
    """Survivor mask of candidates in position order for the window policy: every protected
    one, plus the last (most recent) of the rest up to `keep` in total. No scores and no
    quick-select: a pass counts the unprotected candidates and a pass marks the survivors,
    `parallelism` a cycle each (ceil(n / parallelism) cycles each)."""
    n = protected.shape[0]
    n_protected = 0
    for i in range(n):
        if protected[i]:
            n_protected += 1
    free = max(keep - n_protected, 0)
    first_kept = (n - n_protected) - free  # unprotected candidates before the window
    mask = protected.copy()
    seen = 0
    for i in range(n):
        if not protected[i]:
            mask[i] = seen >= first_kept
            seen += 1
    return mask, 2 * ((n + parallelism - 1) // parallelism)


@njit(cache=True, nogil=True)
def value_topk_rows(
    probs: np.ndarray,
    visible: np.ndarray,
    keep_num: int,
    keep_den: int,
    parallelism: int,
    out: np.ndarray,
    fetched: np.ndarray,
    row_pass: np.ndarray,
) -> tuple[int, int]:
    """Per row i keep the floor(visible[i] * keep) largest of probs[i, :visible[i]] (>= 1).

    `keep` is the rational keep_num / keep_den (exact floor). Writes the pruned row into
    `out` and ORs its kept columns into `fetched[row_pass[i]]` (the design's row pipeline runs
    a pass per row_pass value, fetching V afresh in each). Returns (V rows multiplied, the
    top-k engine's quick-select cycles over all rows, 0 for a row that keeps all: the design
    runs the filter fused into its select pass, not in the top-k engine).
    """
    kept_total = 0
    cycles = 0
    for i in range(probs.shape[0]):
        n = visible[i]
        k = max(1, (n * keep_num) // keep_den)
        row = np.empty(n, dtype=np.int64)
        for j in range(n):
            row[j] = np.int64(probs[i, j])
        mask, _, row_cycles = topk_mask(row, k, parallelism)
        if k < n:  # topk_mask's cycles include its filter pass, ceil(n / parallelism)
            cycles += row_cycles - (n + parallelism - 1) // parallelism
        for j in range(probs.shape[1]):
            keep_it = j < n and mask[j]
            out[i, j] = probs[i, j] if keep_it else 0.0
            if keep_it:
                fetched[row_pass[i], j] = True
        kept_total += min(k, n)
    return kept_total, cycles
