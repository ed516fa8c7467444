"""Importance accumulators and selections of cascade pruning (`kernels.importance`)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatten_hls.kernels.importance import (
    abs_sum,
    add_column_sums,
    select_survivors,
    value_topk_rows,
)
from spatten_hls.kernels.topk import topk_mask, topk_reference


def ints(values):
    return np.asarray(values, dtype=np.int64)


def bools(values):
    return np.asarray(values, dtype=np.bool_)


# -- accumulators -----------------------------------------------------------------------------


def test_add_column_sums_scatters_to_positions():
    importance = ints([100, 0, 0, 0, 0, 0])
    probs = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    add_column_sums(importance, ints([0, 2, 5]), probs)
    assert importance.tolist() == [105, 0, 7, 0, 0, 9]
    add_column_sums(importance, ints([0, 2, 5]), probs)  # it accumulates
    assert importance.tolist() == [110, 0, 14, 0, 0, 18]


def test_add_column_sums_exact_on_large_codes():
    """Probability codes (UQ1.16, up to 65536) summed over many rows stay exact integers."""
    importance = np.zeros(2, dtype=np.int64)
    probs = np.full((1000, 2), 65536.0)
    probs[:, 1] = 1.0
    add_column_sums(importance, ints([1, 0]), probs)
    assert importance.tolist() == [1000, 65_536_000]


def test_abs_sum():
    assert abs_sum(ints([[-3, 4], [0, -1]])) == 8
    assert abs_sum(ints([[0, 0]])) == 0
    assert abs_sum(np.zeros((0, 4), dtype=np.int64)) == 0
    assert abs_sum(ints([[-2048] * 4] * 3)) == 2048 * 12


# -- select_survivors -------------------------------------------------------------------------


def test_select_survivors_plain():
    mask, cycles = select_survivors(ints([5, 9, 1, 9, 7]), bools([0] * 5), 3, 16)
    assert np.flatnonzero(mask).tolist() == [1, 3, 4]
    assert cycles > 0


def test_select_survivors_ties_to_lower_index():
    mask, _ = select_survivors(ints([4, 4, 4, 4, 4]), bools([0] * 5), 2, 16)
    assert mask.tolist() == [True, True, False, False, False]


def test_select_survivors_protected_always_kept():
    """Index 4 is the least important but protected; the other 2 slots go to the best."""
    importance = ints([50, 10, 40, 30, 0])
    mask, _ = select_survivors(importance, bools([0, 0, 0, 0, 1]), 3, 16)
    assert np.flatnonzero(mask).tolist() == [0, 2, 4]


def test_select_survivors_protected_exceed_keep():
    importance = ints([9, 1, 2, 8, 3])
    protected = bools([0, 1, 1, 0, 1])
    mask, cycles = select_survivors(importance, protected, 2, 16)
    assert mask.tolist() == protected.tolist()  # count = max(keep, protected) = 3
    assert cycles == 2  # nothing left to choose: only the compaction and expansion passes


def test_select_survivors_ties_among_unprotected():
    """Protected index 0 takes one slot; of the tied rest the lowest index wins."""
    mask, _ = select_survivors(ints([1, 6, 6, 6, 6]), bools([1, 0, 0, 0, 0]), 3, 4)
    assert np.flatnonzero(mask).tolist() == [0, 1, 2]


def test_select_survivors_does_not_modify_inputs():
    importance, protected = ints([3, 1, 2]), bools([0, 1, 0])
    select_survivors(importance, protected, 2, 16)
    assert importance.tolist() == [3, 1, 2] and protected.tolist() == [False, True, False]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_select_survivors_property(data):
    n = data.draw(st.integers(1, 60))
    importance = ints(data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)))
    protected = bools(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    keep = data.draw(st.integers(1, n))
    mask, _ = select_survivors(importance, protected, keep, data.draw(st.sampled_from([1, 16])))
    n_protected = int(protected.sum())
    assert int(mask.sum()) == max(keep, n_protected)
    assert mask[protected].all()
    # the unprotected survivors are exactly the reference top-k of the unprotected ones
    free = np.flatnonzero(~protected)
    expected = topk_reference(importance[free], max(keep - n_protected, 0))
    assert np.array_equal(mask[free], expected)


# -- value_topk_rows --------------------------------------------------------------------------


def run_value_topk(probs, visible, num, den, parallelism=16):
    probs = np.asarray(probs, dtype=np.float64)
    out = np.full_like(probs, -1.0)
    fetched = np.zeros((1, probs.shape[1]), dtype=np.bool_)
    passes = np.zeros(probs.shape[0], dtype=np.int64)
    total, _ = value_topk_rows(probs, ints(visible), num, den, parallelism, out, fetched, passes)
    return out, fetched[0], total


def test_value_topk_rows_hand_example():
    probs = [[10, 40, 30, 20], [5, 5, 5, 5]]
    out, fetched, total = run_value_topk(probs, [4, 4], 1, 2)
    assert out.tolist() == [
        [0, 40, 30, 0],  # no renormalization: kept values unchanged
        [5, 5, 0, 0],
    ]  # ties to the lower index
    assert fetched.tolist() == [True, True, True, False]
    assert total == 4


def test_value_topk_rows_causal_at_least_one():
    """Causal rows see 1, 2, 3, 4 keys; keep 1/2 -> floor 0 -> 1, 1, 1, 2 kept."""
    probs = [[65536, 0, 0, 0], [100, 200, 0, 0], [300, 100, 200, 0], [10, 30, 20, 40]]
    out, fetched, total = run_value_topk(probs, [1, 2, 3, 4], 1, 2)
    assert out.tolist() == [[65536, 0, 0, 0], [0, 200, 0, 0], [300, 0, 0, 0], [0, 30, 0, 40]]
    assert fetched.tolist() == [True, True, False, True]
    assert total == 5


def test_value_topk_rows_ignores_invisible_columns():
    """Entries beyond a row's visible keys are zeroed and never fetched, however large."""
    out, fetched, total = run_value_topk([[1, 2, 999]], [2], 1, 1)
    assert out.tolist() == [[1, 2, 0]]
    assert fetched.tolist() == [True, True, False]
    assert total == 2


def test_value_topk_rows_exact_rational_keep():
    """keep = 2/3 of 3 visible keys is exactly 2 (a float 0.666.. * 3 might floor to 1)."""
    out, _, total = run_value_topk([[7, 9, 8]], [3], 2, 3)
    assert out.tolist() == [[0, 9, 8]]
    assert total == 2


def test_value_topk_rows_keep_all_is_identity():
    probs = np.array([[3.0, 1.0, 2.0], [0.0, 0.0, 5.0]])
    out, fetched, total = run_value_topk(probs, [3, 3], 1, 1)
    assert np.array_equal(out, probs)
    assert fetched.all() and total == 6


def test_value_topk_rows_fetched_is_ored():
    """`fetched` is OR-ed into: columns already marked by an earlier head stay marked."""
    probs = np.array([[1.0, 9.0, 0.0, 0.0]])
    out = np.zeros_like(probs)
    fetched = np.array([bools([False, False, False, True])])
    total, _ = value_topk_rows(probs, ints([4]), 1, 4, 16, out, fetched, ints([0]))
    assert fetched[0].tolist() == [False, True, False, True]
    assert total == 1


def test_value_topk_rows_passes_and_cycles():
    """Each row's kept columns go to its pass; the cycles are the rows' quick-select cycles
    (the top-k engine's without its filter pass; 0 for a row that keeps all)."""
    probs = np.array([[1.0, 9.0, 5.0, 0.0], [7.0, 0.0, 0.0, 8.0], [4.0, 0.0, 0.0, 0.0]])
    out = np.zeros_like(probs)
    fetched = np.zeros((2, 4), dtype=np.bool_)
    total, cycles = value_topk_rows(probs, ints([4, 4, 1]), 1, 4, 2, out, fetched, ints([0, 1, 1]))
    assert fetched.tolist() == [[False, True, False, False], [True, False, False, True]]
    assert total == 3
    expected = sum(
        topk_mask(np.array(row[:n], dtype=np.int64), max(1, n // 4), 2)[2] - -(-n // 2)
        for row, n in zip(probs[:2], [4, 4], strict=True)
    )
    assert cycles == expected > 0


@pytest.mark.parametrize("num,den", [(1, 5), (1, 2), (3, 4), (1, 1)])
def test_value_topk_rows_counts(num, den):
    rng = np.random.default_rng(num * 10 + den)
    probs = rng.integers(0, 1 << 16, (8, 12)).astype(np.float64)
    probs[:, 5] = 0.0  # a column of zeros: kept only when a row has nothing better
    visible = ints(rng.integers(1, 13, 8))
    out, fetched, total = run_value_topk(probs, visible, num, den)
    expected_total = 0
    union = np.zeros(probs.shape[1], dtype=bool)
    for i, n in enumerate(visible):
        k = max(1, (int(n) * num) // den)
        expected_total += k
        keep = topk_reference(probs[i, :n].astype(np.int64), k)
        assert int(keep.sum()) == k
        assert np.array_equal(out[i, :n], np.where(keep, probs[i, :n], 0.0))
        assert not out[i, n:].any()
        union[:n] |= keep
    assert total == expected_total
    assert np.array_equal(fetched, union)  # V rows fetched: the union of kept columns
