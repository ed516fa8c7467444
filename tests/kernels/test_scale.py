"""Score multiplier (M, sh) and the integer score scaling with saturation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatten_hls.kernels.formats import MASKED, MULT_BITS, QK_ACC_BITS, SCORE_MAX, sat_sym, sym_max
from spatten_hls.kernels.scale import scale_multiplier, scale_scores


@pytest.mark.parametrize(
    ("c", "expected"),
    [
        (0.75, (6291456, 23)),  # 0.75 * 2**23
        (1.0, (4194304, 22)),  # 2**22 / 2**22
        (3.0, (6291456, 21)),  # 0.75 * 2**2 -> sh = 23 - 2
        ((2**22 + 0.5) / 2**23, (2**22 + 1, 23)),  # exact half rounds up
        (1.0 - 2.0**-30, (2**22, 22)),  # rounds to 2**23: carry renormalised
    ],
)
def test_scale_multiplier_hand_examples(c: float, expected: tuple[int, int]) -> None:
    assert scale_multiplier(c) == expected


@pytest.mark.parametrize("c", [0.0, -1.0, math.nan, math.inf, 2.0**30, 2.0**-60])
def test_scale_multiplier_rejects(c: float) -> None:
    with pytest.raises(ValueError):
        scale_multiplier(c)


@settings(max_examples=200, deadline=None)
@given(c=st.floats(2.0**-38, 2.0**21, allow_nan=False, allow_infinity=False))
def test_scale_multiplier_range_and_accuracy(c: float) -> None:
    m, sh = scale_multiplier(c)
    assert 2 ** (MULT_BITS - 1) <= m < 2**MULT_BITS
    assert 1 <= sh <= 62
    assert abs(m / 2.0**sh - c) <= c * 2.0**-MULT_BITS


def test_scale_scores_hand_example_round_half_up() -> None:
    # M / 2**sh = 0.5: 1.5 -> 2, -1.5 -> -1, 2.5 -> 3, -2.5 -> -2, 0.5 -> 1 (half up = floor(x+.5)).
    acc = np.array([[3, -3, 5, -5, 0, 1]], dtype=np.int64)
    assert scale_scores(acc, 2**22, 23).tolist() == [[2, -1, 3, -2, 0, 1]]


def test_scale_scores_saturates_symmetrically() -> None:
    acc = np.array([[2**24, -(2**24), SCORE_MAX, -SCORE_MAX]], dtype=np.int64)
    out = scale_scores(acc, 2**22, 22)  # multiplier exactly 1.0
    assert out.tolist() == [[SCORE_MAX, -SCORE_MAX, SCORE_MAX, -SCORE_MAX]]
    assert MASKED not in out


def test_scale_scores_accumulator_guard() -> None:
    ok = np.array([[2**QK_ACC_BITS - 1, -(2**QK_ACC_BITS) + 1]], dtype=np.int64)
    scale_scores(ok, 2**MULT_BITS - 1, 62)
    with pytest.raises(ValueError):
        scale_scores(np.array([[2**QK_ACC_BITS]], dtype=np.int64), 2**22, 30)
    with pytest.raises(ValueError):
        scale_scores(np.array([[1]], dtype=np.int64), 2**22, 0)


def test_scale_scores_matches_big_integer_reference_at_the_extremes() -> None:
    rng = np.random.default_rng(7)
    limit = 2**QK_ACC_BITS - 1
    acc = rng.integers(-limit, limit + 1, size=(16, 16))
    acc[0, :4] = [limit, -limit, 0, -1]
    for m, sh in [(2**MULT_BITS - 1, 62), (2**22, 40), (5000000, 25), (2**22, 1)]:
        got = scale_scores(acc, m, sh)
        want = [
            [max(-SCORE_MAX, min(SCORE_MAX, (int(a) * m + 2 ** (sh - 1)) >> sh)) for a in row]
            for row in acc
        ]
        assert got.tolist() == want


def test_format_helpers() -> None:
    assert (sym_max(2), sym_max(8), sym_max(24)) == (1, 127, SCORE_MAX)
    assert [sat_sym(x, 8) for x in (-1000, -128, -127, 0, 127, 128, 1000)] == [
        -127,
        -127,
        -127,
        0,
        127,
        127,
        127,
    ]
    assert MASKED == -SCORE_MAX - 1
