"""The fused kernels of the simulator equal the unfused engine chain bit for bit.

`scaled_softmax` must give exactly scale_scores -> [causal_mask] -> softmax_rows;
`qk_accumulate_f64` / `pv_accumulate_f64` must give exactly the plain integer loops and refuse
widths whose float64 products could lose bits (the 2**53 bound, proved from the widths).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatten_hls.kernels.formats import (
    EXP_DOMAIN,
    MASKED,
    PROB_ONE,
    QK_ACC_BITS,
    SCORE_MAX,
    sym_max,
)
from spatten_hls.kernels.fused import pv_accumulate_f64, qk_accumulate_f64, scaled_softmax
from spatten_hls.kernels.mask import causal_mask
from spatten_hls.kernels.qk import ExactnessError, qk_scores_loop
from spatten_hls.kernels.scale import scale_multiplier, scale_scores
from spatten_hls.kernels.softmax import softmax_rows
from spatten_hls.kernels.tables import softmax_tables

TABLES = softmax_tables()


def chain(acc: np.ndarray, m: int, sh: int, offset: int | None) -> np.ndarray:
    """The unfused engines, one after another (offset None: no causal mask)."""
    scores = scale_scores(acc.astype(np.int64), m, sh)
    if offset is not None:
        scores = causal_mask(scores, offset)
    return softmax_rows(scores, *TABLES)


def fused(
    acc: np.ndarray, m: int, sh: int, offset: int | None, out: np.ndarray | None = None
) -> np.ndarray:
    return scaled_softmax(
        acc.astype(np.float64),
        m,
        sh,
        0 if offset is None else offset,
        offset is not None,
        *TABLES,
        out=out,
    )


def assert_fused_equals_chain(acc: np.ndarray, m: int, sh: int, offset: int | None) -> None:
    expected = chain(acc, m, sh, offset)
    got = fused(acc, m, sh, offset)
    assert got.dtype == np.float64 and got.shape == acc.shape
    assert np.array_equal(got, expected.astype(np.float64))
    assert np.array_equal(got.astype(np.int64), expected)  # exact integers, not just close


# -- hand-made rows ---------------------------------------------------------------------------

ONE = scale_multiplier(1.0)  # M / 2**sh == 1 exactly: score code == accumulator
assert ONE == (2**22, 22)


@pytest.mark.parametrize("offset", [None, 0, 1, 3, 10])
def test_small_matrix_with_and_without_mask(offset: int | None) -> None:
    rng = np.random.default_rng(7)
    acc = rng.integers(-5000, 5000, size=(6, 9))
    assert_fused_equals_chain(acc, *ONE, offset)
    probs = fused(acc, *ONE, offset)
    if offset is not None:  # masked keys j > i + offset get probability 0, the rest do not
        keep = np.arange(9)[None, :] <= np.arange(6)[:, None] + offset
        assert not probs[~keep].any()
        assert probs[keep].min() >= 0 and probs[:, 0].all()


def test_mask_offset_changes_the_result() -> None:
    acc = np.random.default_rng(3).integers(-3000, 3000, size=(5, 8))
    results = [fused(acc, *ONE, off) for off in (None, 0, 2)]
    assert not np.array_equal(results[0], results[1])
    assert not np.array_equal(results[1], results[2])
    # an offset reaching past the last key masks nothing
    assert np.array_equal(fused(acc, *ONE, 7), results[0])


def test_saturated_scores_rows() -> None:
    # c = 2**10: accumulators of 2**37 scale to 2**47, far beyond SCORE_MAX = 2**23 - 1
    m, sh = scale_multiplier(1024.0)
    big = 2**37
    acc = np.array(
        [
            [big, big - 1, 2**20, -big, 0, big],  # ties at +SCORE_MAX
            [-big, -big + 5, -(2**30), -big, -big, -big],  # every score at -SCORE_MAX
            [-big, 2**13, 2**13 + 1, -big, 12, -3],  # max unsaturated, others at -SCORE_MAX
        ]
    )
    scores = scale_scores(acc, m, sh)
    assert (scores == SCORE_MAX).sum() >= 3 and (scores == -SCORE_MAX).sum() >= 8
    assert not (scores == MASKED).any()  # saturation never produces the sentinel
    for offset in (None, 0, 2):
        assert_fused_equals_chain(acc, m, sh, offset)
    probs = fused(acc, m, sh, None)
    # row 1: all scores equal (-SCORE_MAX), so the row is uniform
    assert len(set(probs[1].tolist())) == 1 and probs[1, 0] > 0


def test_rows_entirely_below_exp_domain_except_the_max() -> None:
    acc = np.array(
        [
            [5, 5 - EXP_DOMAIN, 5 - 20000, 5 - 2**30, 5 - EXP_DOMAIN - 1],
            [-(2**33), 0, -EXP_DOMAIN, -EXP_DOMAIN * 3, -(2**36)],
            [0, -(EXP_DOMAIN - 1), -EXP_DOMAIN, 1 - EXP_DOMAIN, -EXP_DOMAIN - 7],
        ]
    )
    probs = chain(acc, *ONE, None)
    assert probs[0].tolist() == [PROB_ONE, 0, 0, 0, 0]
    assert probs[1].tolist() == [0, PROB_ONE, 0, 0, 0]
    assert probs[2, 0] > 0  # the row keeps its max
    for offset in (None, 0, 1, 4):
        assert_fused_equals_chain(acc, *ONE, offset)


def test_single_key_and_single_query() -> None:
    assert fused(np.array([[123]]), *ONE, None).tolist() == [[PROB_ONE]]
    assert fused(np.array([[-(2**37)]]), *ONE, 0).tolist() == [[PROB_ONE]]
    acc = np.arange(-30, 30).reshape(1, 60) * 997
    for offset in (None, 0, 17, 59):
        assert_fused_equals_chain(acc, *ONE, offset)


# -- property: any shape, multiplier and accumulator magnitude ------------------------------


@settings(max_examples=250, deadline=None)
@given(
    lq=st.integers(1, 30),
    lk=st.integers(1, 60),
    log_c=st.floats(np.log(1e-4), np.log(1e3)),
    magnitude=st.integers(0, 37),
    mask=st.one_of(st.none(), st.integers(0, 70)),
    seed=st.integers(0, 2**32 - 1),
)
def test_fused_equals_chain_property(
    lq: int, lk: int, log_c: float, magnitude: int, mask: int | None, seed: int
) -> None:
    m, sh = scale_multiplier(float(np.exp(log_c)))
    rng = np.random.default_rng(seed)
    acc = rng.integers(-(2**magnitude), 2**magnitude, size=(lq, lk), endpoint=True)
    if rng.random() < 0.3:  # rows with ties and extreme values
        acc[:, rng.integers(0, lk)] = 2**magnitude
    assert_fused_equals_chain(acc, m, sh, mask)


# -- out= reuse and errors ------------------------------------------------------------------


def test_out_reuse_gives_the_same_result() -> None:
    rng = np.random.default_rng(11)
    m, sh = scale_multiplier(0.37)
    buffer = np.full((7, 13), 12345.5)  # garbage that must be overwritten everywhere
    for offset in (2, None, 0):  # masked entries must be re-zeroed on every reuse
        acc = rng.integers(-(2**20), 2**20, size=(7, 13))
        got = fused(acc, m, sh, offset, out=buffer)
        assert got is buffer
        assert np.array_equal(buffer, fused(acc, m, sh, offset))
        assert np.array_equal(buffer, chain(acc, m, sh, offset).astype(np.float64))
    with pytest.raises(ValueError, match="does not match"):
        fused(np.zeros((3, 4)), m, sh, None, out=np.empty((4, 3)))


def test_accumulator_beyond_width_raises_like_the_chain() -> None:
    acc = np.zeros((3, 5), dtype=np.int64)
    acc[1, 2] = 2**QK_ACC_BITS
    with pytest.raises(ValueError, match="QK_ACC_BITS"):
        chain(acc, *ONE, None)
    with pytest.raises(ValueError, match="QK_ACC_BITS"):
        fused(acc, *ONE, None)
    acc[1, 2] = -(2**QK_ACC_BITS)
    with pytest.raises(ValueError, match="QK_ACC_BITS"):
        fused(acc, *ONE, None)
    acc[1, 2] = 2**QK_ACC_BITS - 1  # the largest legal magnitude is accepted
    assert_fused_equals_chain(acc, *ONE, None)


def test_negative_mask_offset_and_bad_shift_raise() -> None:
    acc = np.zeros((2, 3))
    with pytest.raises(ValueError):
        chain(acc, *ONE, -1)  # row 0 would see no key
    with pytest.raises(ValueError, match="no key"):
        fused(acc, *ONE, -1)
    for sh in (0, 63):
        with pytest.raises(ValueError, match="shift"):
            scaled_softmax(acc, 2**22, sh, 0, False, *TABLES)


# -- exact float64 matmuls ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    lq=st.integers(1, 20),
    lk=st.integers(1, 40),
    d=st.integers(1, 128),
    q_bits=st.integers(2, 16),
    k_bits=st.integers(2, 16),
    seed=st.integers(0, 2**32 - 1),
)
def test_qk_accumulate_f64_equals_integer_loop(
    lq: int, lk: int, d: int, q_bits: int, k_bits: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    q = rng.integers(-sym_max(q_bits), sym_max(q_bits), size=(lq, d), endpoint=True)
    k = rng.integers(-sym_max(k_bits), sym_max(k_bits), size=(lk, d), endpoint=True)
    q[0] = sym_max(q_bits)  # extreme rows: the largest partial sums the widths allow
    k[0] = -sym_max(k_bits)
    got = qk_accumulate_f64(q.astype(np.float64), k.astype(np.float64), q_bits, k_bits)
    assert got.dtype == np.float64
    assert np.array_equal(got.astype(np.int64), qk_scores_loop(q, k))
    assert int(got[0, 0]) == -d * sym_max(q_bits) * sym_max(k_bits)


def test_qk_accumulate_f64_out_and_exactness_bound() -> None:
    # 27-bit codes: sym_max = 2**26 - 1; d = 2 stays below 2**53, d = 3 does not
    top = sym_max(27)
    q = np.full((2, 2), float(top))
    k = np.full((3, 2), float(-top))
    out = np.empty((2, 3))
    got = qk_accumulate_f64(q, k, 27, 27, out=out)
    assert got is out
    assert int(got[0, 0]) == -2 * top * top  # exact: 2**53 - 2**28 + 2 needs all 53 bits
    assert 2 * top * top < 2**53 <= 3 * top * top
    with pytest.raises(ExactnessError, match="2\\*\\*53"):
        qk_accumulate_f64(np.ones((2, 3)), np.ones((3, 3)), 27, 27)  # proved from widths
    with pytest.raises(ValueError, match="head dims"):
        qk_accumulate_f64(np.ones((2, 3)), np.ones((3, 4)), 8, 8)


@settings(max_examples=60, deadline=None)
@given(
    lq=st.integers(1, 20),
    lk=st.integers(1, 60),
    d=st.integers(1, 64),
    v_bits=st.integers(2, 16),
    seed=st.integers(0, 2**32 - 1),
)
def test_pv_accumulate_f64_equals_integer_loop(
    lq: int, lk: int, d: int, v_bits: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.integers(0, PROB_ONE, size=(lq, lk), endpoint=True)
    probs[0] = PROB_ONE
    v = rng.integers(-sym_max(v_bits), sym_max(v_bits), size=(lk, d), endpoint=True)
    v[:, 0] = sym_max(v_bits)
    got = pv_accumulate_f64(probs.astype(np.float64), v.astype(np.float64), v_bits)
    expected = qk_scores_loop(probs, np.ascontiguousarray(v.T))  # probs @ v, integer loop
    assert np.array_equal(got.astype(np.int64), expected)
    assert int(got[0, 0]) == lk * PROB_ONE * sym_max(v_bits)


def test_pv_accumulate_f64_out_and_exactness_bound() -> None:
    # 32-bit V: Lk * 2**16 * (2**31 - 1) < 2**53 iff Lk <= 64
    top = sym_max(32)
    probs = np.full((2, 64), float(PROB_ONE))
    v = np.full((64, 3), float(top))
    out = np.empty((2, 3))
    got = pv_accumulate_f64(probs, v, 32, out=out)
    assert got is out
    assert int(got[1, 2]) == 64 * PROB_ONE * top
    with pytest.raises(ExactnessError):
        pv_accumulate_f64(np.zeros((2, 65)), np.zeros((65, 3)), 32)
    with pytest.raises(ValueError, match="do not chain"):
        pv_accumulate_f64(np.zeros((2, 5)), np.zeros((4, 3)), 8)
