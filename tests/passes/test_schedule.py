"""Per-layer keep schedules of cascade token and head pruning (`compiler.passes.schedule`)."""

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatten_hls.compiler.ir.types import as_ratio
from spatten_hls.compiler.passes.schedule import keep_counts, keep_fractions

GPT2_SMALL_TRACE = [0.9, 0.7, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]


def is_non_increasing(xs):
    return all(b <= a for a, b in itertools.pairwise(xs))


# -- keep_fractions ---------------------------------------------------------------------------


def test_paper_like_schedule_12_layers():
    """Front 15% of 12 layers (ceil 1.8 = 2) unpruned; the other 10 average exactly `keep`."""
    f = keep_fractions(12, 0.5, 0.15)
    assert len(f) == 12
    assert f[:2] == [1.0, 1.0]
    assert f[2] < 1.0
    rest = f[2:]
    assert math.fsum(rest) / len(rest) == pytest.approx(0.5, abs=1e-12)
    assert is_non_increasing(f)
    # linear ramp from min(1, 1.5 * keep) = 0.75 down to 2 * keep - 0.75 = 0.25
    assert rest[0] == pytest.approx(0.75, abs=1e-12)
    assert rest[-1] == pytest.approx(0.25, abs=1e-12)
    steps = [a - b for a, b in itertools.pairwise(rest)]
    assert steps == pytest.approx([0.5 / 9] * 9, abs=1e-12)


def test_gpt2_medium_head_skip():
    """Head pruning skips the front 30%: 24 layers -> ceil(7.2) = 8 unpruned layers."""
    f = keep_fractions(24, 0.5, 0.30)
    assert f[:8] == [1.0] * 8
    assert f[8] < 1.0


def test_exact_multiple_skip_is_not_rounded_up():
    """0.15 * 20 is 3.0000000000000004 in binary: still 3 skipped layers, not 4."""
    f = keep_fractions(20, 0.5, 0.15)
    assert f[:3] == [1.0] * 3
    assert f[3] == pytest.approx(0.75)


def test_high_keep_starts_at_one():
    """keep > 2/3: the ramp starts at 1.0 (capped) and still averages `keep`."""
    f = keep_fractions(10, 0.9, 0.0)
    assert f[0] == 1.0
    assert f[-1] == pytest.approx(0.8)
    assert math.fsum(f) / 10 == pytest.approx(0.9, abs=1e-12)


def test_single_pruned_layer_gets_keep():
    assert keep_fractions(1, 0.3, 0.0) == [0.3]
    assert keep_fractions(2, 0.3, 0.5) == [1.0, 0.3]


def test_everything_skipped():
    assert keep_fractions(3, 0.2, 0.99) == [1.0, 1.0, 1.0]


def test_keep_per_layer_passthrough():
    per_layer = (0.9, 0.7, 0.7, 0.2)
    f = keep_fractions(4, 0.123, 0.5, per_layer)
    assert f == [0.9, 0.7, 0.7, 0.2]
    assert all(isinstance(x, float) for x in f)


def test_keep_one_is_dense():
    assert keep_fractions(12, 1.0, 0.15) == [1.0] * 12
    assert keep_counts(1024, keep_fractions(12, 1.0, 0.15)) == [1024] * 12
    assert keep_counts(7, [1.0, 1.0]) == [7, 7]


# -- keep_counts ------------------------------------------------------------------------------


def test_gpt2_small_trace_counts():
    """The official GPT-2-Small trace: floor(ratio * 1024) kept keys per layer."""
    counts = keep_counts(1024, GPT2_SMALL_TRACE)
    assert counts == [921, 716] + [204] * 4 + [102] * 6


def test_counts_read_fractions_as_decimals():
    """0.29 * 100 is 28.999999999999996 in binary floats; the user meant 29."""
    assert 0.29 * 100 < 29 and 0.57 * 100 < 57
    assert keep_counts(100, [0.29, 0.57]) == [29, 57]
    assert keep_counts(10, [0.7]) == [7]
    assert as_ratio(0.7) == Fraction(7, 10)
    assert as_ratio(0.15) == Fraction(3, 20)


def test_counts_at_least_one():
    assert keep_counts(4, [0.1, 0.2, 0.25]) == [1, 1, 1]
    assert keep_counts(1, [1e-6]) == [1]
    assert keep_counts(12, keep_fractions(2, 0.05, 0.0)) == [1, 1]


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(1, 5000),
    fractions=st.lists(st.floats(min_value=1e-6, max_value=1.0), min_size=1, max_size=24),
)
def test_counts_bounds(total, fractions):
    counts = keep_counts(total, fractions)
    assert len(counts) == len(fractions)
    for c, f in zip(counts, fractions, strict=True):
        assert 1 <= c <= total
        assert c == max(1, math.floor(total * as_ratio(f)))
    ordered = sorted(fractions, reverse=True)
    assert is_non_increasing(keep_counts(total, ordered))


# -- the schedule as a property ---------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    keep=st.floats(min_value=0.0, max_value=1.0, exclude_min=True, allow_subnormal=False),
    skip=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    n=st.integers(1, 48),
)
def test_schedule_properties(keep, skip, n):
    f = keep_fractions(n, keep, skip)
    assert len(f) == n
    assert all(0.0 < x <= 1.0 for x in f), f
    assert is_non_increasing(f), f
    # unpruned layers come first: at least ceil(skip * n) (up to float slack) are 1.0
    skipped = min(n, math.ceil(skip * n - 1e-9))
    assert f[:skipped] == [1.0] * skipped
    pruned = f[skipped:]
    if pruned:
        assert abs(math.fsum(pruned) / len(pruned) - keep) <= 1e-12, (pruned, keep)
    counts = keep_counts(1024, f)
    assert is_non_increasing(counts)
    assert all(1 <= c <= 1024 for c in counts)
