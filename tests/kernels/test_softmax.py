"""Tables, causal mask and the fixed-point softmax."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatten_hls.kernels.error_bound import exp_table_max_error
from spatten_hls.kernels.formats import (
    EXP_DOMAIN,
    MASKED,
    PROB_ONE,
    RECIP_BASE,
    RECIP_FRAC,
    SCORE_MAX,
)
from spatten_hls.kernels.mask import causal_mask
from spatten_hls.kernels.softmax import exp_fixed_codes, softmax_row_max, softmax_rows
from spatten_hls.kernels.tables import exp_hi_table, exp_lo_table, recip_table, softmax_tables

TABLES = softmax_tables()
EXP_HI, EXP_LO, RECIP = TABLES


def test_tables_hand_values_sizes_and_single_source() -> None:
    assert (EXP_HI.size, EXP_LO.size, RECIP.size) == (16, 1024, 2048)
    assert EXP_HI[:3].tolist() == [65536, 24109, 8869]  # e**-1 * 2**16 = 24109.07
    assert EXP_HI[11:].tolist() == [1, 0, 0, 0, 0]  # e**-11 * 2**16 = 1.09, e**-12 -> 0.40
    assert EXP_LO[:2].tolist() == [65536, 65472]  # e**(-1/1024) * 2**16 = 65472.03
    assert RECIP[[0, 1, 2047]].tolist() == [262144, 262016, 131104]  # 2**29/4095 = 131104.008
    for table in TABLES:
        assert table.dtype == np.int64 and not table.flags.writeable
    assert exp_hi_table() is EXP_HI and exp_lo_table() is EXP_LO and recip_table() is RECIP


def test_tables_match_their_formulas() -> None:
    h, f = np.arange(16), np.arange(1024)
    j = np.arange(2048)
    assert np.array_equal(EXP_HI, [math.floor(math.exp(-x) * 2**16 + 0.5) for x in h])
    assert np.array_equal(EXP_LO, [math.floor(math.exp(-x / 1024) * 2**16 + 0.5) for x in f])
    assert np.array_equal(RECIP, [math.floor(2**29 / (2048 + x) + 0.5) for x in j])


def test_exp_exhaustive_error_below_two_lsb_and_monotone() -> None:
    x = np.arange(EXP_DOMAIN + 5, dtype=np.int64)
    e = exp_fixed_codes(x, EXP_HI, EXP_LO)
    # independent numpy evaluation of the same two-table formula
    xs = x[:EXP_DOMAIN]
    manual = (EXP_HI[xs >> 10] * EXP_LO[xs & 1023] + 2**15) >> 16
    assert np.array_equal(e[:EXP_DOMAIN], manual)
    assert not e[EXP_DOMAIN:].any()
    err = np.abs(e[:EXP_DOMAIN] / 2**16 - np.exp(-xs / 1024.0)).max()
    assert err < 2 * 2.0**-16
    assert exp_table_max_error() == pytest.approx(max(err, math.exp(-16)), rel=1e-12)
    assert np.all(np.diff(e) <= 0)


def test_recip_monotone_and_accurate() -> None:
    assert np.all(np.diff(RECIP) < 0)
    t = RECIP_BASE + np.arange(RECIP_BASE)
    assert np.abs(RECIP - 2.0**RECIP_FRAC / t).max() <= 0.5


def test_causal_mask_hand_example() -> None:
    s = np.arange(6, dtype=np.int64).reshape(2, 3)
    m = MASKED
    assert causal_mask(s, 0).tolist() == [[0, m, m], [3, 4, m]]
    assert causal_mask(s, 1).tolist() == [[0, 1, m], [3, 4, 5]]
    assert causal_mask(s, 2).tolist() == s.tolist()
    assert s.tolist() == [[0, 1, 2], [3, 4, 5]]  # input untouched


def test_softmax_hand_example() -> None:
    # m = 0; x = [0, 1024]: e0 = 2**16, e1 = (EXP_HI[1] * EXP_LO[0] + 2**15) >> 16 = 24109.
    # S = 89645, n = 17, t = 89645 >> 5 = 2801, r = RECIP[753] = round(2**29 / 2801) = 191671,
    # shift = 18: p0 = round(65536 * 191671 / 2**18) = round(47917.75) = 47918,
    #             p1 = round(24109 * 191671 / 2**18) = round(17627.70) = 17628.
    e1 = (int(EXP_HI[1]) * int(EXP_LO[0]) + 2**15) >> 16
    s_total = 2**16 + e1
    t = s_total >> (s_total.bit_length() - 12)
    r = math.floor(2**29 / t + 0.5)
    assert (e1, s_total, t, r, int(RECIP[t - 2048])) == (24109, 89645, 2801, 191671, 191671)
    probs = softmax_rows(np.array([[0, -1024, MASKED]], dtype=np.int64), *TABLES)
    assert probs.tolist() == [[47918, 17628, 0]]
    assert probs.tolist() == [[(2**16 * r + 2**17) >> 18, (e1 * r + 2**17) >> 18, 0]]


def test_softmax_small_exact_cases() -> None:
    rows = np.array([[5, MASKED, MASKED], [7, 7, MASKED], [0, -EXP_DOMAIN, -SCORE_MAX]])
    assert softmax_rows(rows, *TABLES).tolist() == [
        [65536, 0, 0],  # one visible key: probability exactly 1.0
        [32768, 32768, 0],  # S = 2**17, t = 2048, r = 2**18, shift = 19
        [65536, 0, 0],  # x >= EXP_DOMAIN flushes to 0
    ]
    assert softmax_row_max(softmax_rows(rows, *TABLES)).tolist() == [65536, 32768, 65536]


def test_softmax_rejects_all_masked_rows_and_bad_tables() -> None:
    with pytest.raises(ValueError, match="unmasked"):
        softmax_rows(np.array([[1, 2], [MASKED, MASKED]], dtype=np.int64), *TABLES)
    with pytest.raises(ValueError, match="table"):
        softmax_rows(np.zeros((1, 2), dtype=np.int64), EXP_HI, EXP_LO, RECIP[:-1])


def _sum_tolerance(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Derived limits of sum(p) - 2**16: reciprocal ratio r * S / 2**(n+17) lies in
    [r t / 2**29, r (t+1) / 2**29) and each p rounds by at most 1/2 LSB."""
    t = RECIP_BASE + np.arange(RECIP_BASE)
    under = PROB_ONE * (1 - (RECIP * t / 2.0**29).min())
    over = PROB_ONE * ((RECIP * (t + 1) / 2.0**29).max() - 1)
    return -(under + lengths / 2), over + lengths / 2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lk=st.integers(1, 300), spread=st.integers(1, 40000))
def test_softmax_row_sums_masks_and_shift_invariance(seed: int, lk: int, spread: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(-spread, spread + 1, size=(8, lk))
    masked = rng.random((8, lk)) < 0.3
    masked[:, 0] = False
    scores[masked] = MASKED
    probs = softmax_rows(scores, *TABLES)
    assert np.all((probs >= 0) & (probs <= PROB_ONE))
    assert not probs[masked].any()
    lo, hi = _sum_tolerance((~masked).sum(axis=1))
    excess = probs.sum(axis=1) - PROB_ONE
    assert np.all((excess >= lo) & (excess <= hi))
    shifted = np.where(masked, MASKED, scores + 12345)  # only differences matter
    assert np.array_equal(softmax_rows(shifted, *TABLES), probs)
    assert np.array_equal(softmax_row_max(probs), probs.max(axis=1))


def test_row_sum_can_exceed_one_by_the_reciprocal_truncation() -> None:
    # x = 709: e = 32793, S = 65536 + 2 * 32793 = 131122 = 2**17 + 50, n = 18,
    # t = S >> 6 = 2048 drops the 50, r = RECIP[0] = 2**18, shift = 19:
    # p0 = 2**16 * 2**18 / 2**19 = 32768, p1 = (32793 * 2**18 + 2**18) >> 19 = 16397.
    # Exact p0 would be 2**32 / 131122 = 32755.5: the row sums to 2**16 + 26, more than
    # L * 1 LSB; the derived limit (truncation up to 2**-11, i.e. ~32 LSB) holds.
    probs = softmax_rows(np.array([[0, -709, -709]], dtype=np.int64), *TABLES)
    assert probs.tolist() == [[32768, 16397, 16397]]
    excess = int(probs.sum()) - PROB_ONE
    lo, hi = _sum_tolerance(np.array([3]))
    assert excess == 26 and lo[0] <= excess <= hi[0]
