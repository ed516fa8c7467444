"""The top-k engine (`kernels.topk`): quick-select + order-preserving filter, and its cycles."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatten_hls.kernels.topk import (
    PIVOT_SEED,
    TOPK_ROUND_OVERHEAD,
    kth_largest,
    topk_mask,
    topk_reference,
)


def arr(values):
    return np.asarray(values, dtype=np.int64)


# -- the paper's example ----------------------------------------------------------------------


def test_paper_fig9_example():
    """[0.6, 0.1, 0.5, 1.2, 0.6], k = 3: theta = 0.6, num_eq = 2 -> [0.6, 1.2, 0.6]."""
    values = arr([6, 1, 5, 12, 6])
    mask, rounds, cycles = topk_mask(values, 3, 16)
    assert np.flatnonzero(mask).tolist() == [0, 3, 4]
    assert values[mask].tolist() == [6, 12, 6]  # original order kept
    theta, num_eq, k_rounds, k_cycles = kth_largest(values, 3, 16)
    assert (theta, num_eq) == (6, 2)
    assert rounds == k_rounds >= 1
    assert cycles == k_cycles + 1  # filter pass: ceil(5 / 16) = 1


def test_ties_go_to_lower_index():
    mask, _, _ = topk_mask(arr([3, 7, 3, 3, 7, 3]), 3, 4)
    assert np.flatnonzero(mask).tolist() == [0, 1, 4]
    mask, _, _ = topk_mask(arr([5, 5, 5, 5]), 2, 4)
    assert mask.tolist() == [True, True, False, False]


def test_negative_and_extreme_values():
    big = np.iinfo(np.int64)
    values = arr([-5, big.max, big.min, 0, -5, big.max - 1])
    mask, _, _ = topk_mask(values, 3, 2)
    assert np.flatnonzero(mask).tolist() == [1, 3, 5]


def test_trivial_k():
    values = arr([4, 1, 3])
    for k in (3, 4, 100):
        mask, rounds, cycles = topk_mask(values, k, 16)
        assert mask.all() and rounds == 0 and cycles == 0
    for k in (0, -1):
        mask, rounds, cycles = topk_mask(values, k, 16)
        assert not mask.any() and rounds == 0 and cycles == 0
    mask, rounds, cycles = topk_mask(arr([]), 0, 16)
    assert mask.shape == (0,) and rounds == cycles == 0


def test_reference():
    assert topk_reference(arr([6, 1, 5, 12, 6]), 3).tolist() == [True, False, False, True, True]
    assert topk_reference(arr([1, 2]), 0).tolist() == [False, False]
    assert topk_reference(arr([1, 2]), 5).tolist() == [True, True]


# -- against the sorted reference -------------------------------------------------------------


@st.composite
def inputs(draw, max_n=300, proper=False):
    """(values, k); `proper`: 0 < k < n, so quick-select actually runs."""
    n = draw(st.integers(2 if proper else 0, max_n))
    span = draw(st.sampled_from([1, 2, 3, 5, 10, 1000, 2**40]))  # small spans: many ties
    low = draw(st.integers(-(2**40), 2**40))
    values = draw(st.lists(st.integers(low, low + span - 1), min_size=n, max_size=n))
    k = draw(st.integers(1, n - 1) if proper else st.integers(0, n + 1))
    return arr(values), k


@settings(max_examples=400, deadline=None)
@given(case=inputs(), parallelism=st.sampled_from([1, 2, 8, 16, 32]))
def test_topk_matches_reference(case, parallelism):
    values, k = case
    mask, _rounds, _cycles = topk_mask(values, k, parallelism)
    expected = topk_reference(values, k)
    assert mask.dtype == np.bool_
    assert np.array_equal(mask, expected)
    assert int(mask.sum()) == min(k, len(values))
    if 0 < k < len(values):
        theta, num_eq, _, _ = kth_largest(values, k, parallelism)
        assert theta == np.sort(values)[::-1][k - 1]
        assert num_eq == k - int((values > theta).sum())
        assert 1 <= num_eq <= int((values == theta).sum())


# -- the cycle model --------------------------------------------------------------------------


def xorshift32(state):
    state ^= (state << 13) & 0xFFFFFFFF
    state ^= state >> 17
    state ^= (state << 5) & 0xFFFFFFFF
    return state & 0xFFFFFFFF


def quickselect_sizes(values, k):
    """Pure-Python quick-select with the engine's pivot sequence: (theta, num_eq, sizes of the
    candidate set at the start of each round)."""
    cand, target, state, sizes = [int(v) for v in values], k, PIVOT_SEED, []
    while True:
        state = xorshift32(state)
        pivot = cand[state % len(cand)]
        sizes.append(len(cand))
        greater = [v for v in cand if v > pivot]
        equal = sum(1 for v in cand if v == pivot)
        if len(greater) >= target:
            cand = greater
        elif len(greater) + equal >= target:
            return pivot, target - len(greater), sizes
        else:
            target -= len(greater) + equal
            cand = [v for v in cand if v < pivot]


def model_cycles(sizes, n, parallelism):
    rounds = sum(math.ceil(s / parallelism) + TOPK_ROUND_OVERHEAD for s in sizes)
    return rounds + math.ceil(n / parallelism)


@settings(max_examples=200, deadline=None)
@given(case=inputs(max_n=200, proper=True))
def test_cycle_model(case):
    values, k = case
    n = len(values)
    theta, num_eq, sizes = quickselect_sizes(values, k)
    cycles_by_p = []
    for p in (1, 2, 4, 8, 16, 32, 64):
        k_theta, k_eq, k_rounds, k_cycles = kth_largest(values, k, p)
        assert (k_theta, k_eq, k_rounds) == (theta, num_eq, len(sizes))
        assert k_cycles == model_cycles(sizes, 0, p)
        _, rounds, cycles = topk_mask(values, k, p)
        assert rounds == len(sizes)
        assert cycles == model_cycles(sizes, n, p)
        cycles_by_p.append(cycles)
    # more comparators never cost cycles on the same input
    assert all(b <= a for a, b in itertools.pairwise(cycles_by_p))
    # P = 1: at least the filter pass over all n plus one full first round
    assert cycles_by_p[0] >= 2 * n + TOPK_ROUND_OVERHEAD
    assert sizes[0] == n


def test_cycle_model_hand_example():
    """Fig. 9 input at P = 2, one round per pivot draw: recompute it by hand from the rounds."""
    values = arr([6, 1, 5, 12, 6])
    _, _, sizes = quickselect_sizes(values, 3)
    _, rounds, cycles = topk_mask(values, 3, 2)
    assert rounds == len(sizes)
    assert cycles == sum((s + 1) // 2 + 3 for s in sizes) + 3


@pytest.mark.parametrize("n", [1000, 4096])
def test_large_input_rounds_are_logarithmic(n):
    rng = np.random.default_rng(n)
    values = rng.integers(0, 1 << 30, n).astype(np.int64)
    _, rounds, cycles = topk_mask(values, n // 2, 16)
    assert 1 <= rounds <= 4 * math.ceil(math.log2(n))
    assert cycles >= math.ceil(n / 16) * 2 + TOPK_ROUND_OVERHEAD


def test_deterministic():
    rng = np.random.default_rng(7)
    values = rng.integers(-50, 50, 257).astype(np.int64)
    first = topk_mask(values, 100, 16)
    copy = values.copy()
    for _ in range(3):
        mask, rounds, cycles = topk_mask(values, 100, 16)
        assert np.array_equal(mask, first[0]) and (rounds, cycles) == first[1:]
    assert np.array_equal(values, copy)  # the input is not modified
