"""Host-side symmetric quantization and the K MSB/LSB split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatten_hls.kernels.quantize import dequantize, join_msb_lsb, quantize_symmetric, split_msb_lsb


def test_quantize_hand_example_round_half_to_even() -> None:
    # max|x| = 7 and 4 bits -> qmax = 7, s = 1; 2.5 -> 2 and -1.5 -> -2 (half to even).
    codes, scale = quantize_symmetric(np.array([2.5, -1.5, 0.5, 7.0]), 4)
    assert scale == 1.0
    assert codes.dtype == np.int64
    assert codes.tolist() == [2, -2, 0, 7]


def test_quantize_hand_example_fractional_scale() -> None:
    # s = 1/7: x/s = [-7, 3.5, 1.75, 7] -> [-7, 4, 2, 7].
    codes, scale = quantize_symmetric(np.array([[-1.0, 0.5], [0.25, 1.0]]), 4)
    assert scale == pytest.approx(1.0 / 7.0, rel=1e-15)
    assert codes.tolist() == [[-7, 4], [2, 7]]
    assert np.allclose(dequantize(codes, scale), [[-1.0, 4 / 7], [2 / 7, 1.0]])


def test_quantize_all_zero_uses_unit_scale() -> None:
    codes, scale = quantize_symmetric(np.zeros((2, 3)), 8)
    assert scale == 1.0
    assert not codes.any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        quantize_symmetric(np.array([1.0, bad]), 8)


def test_quantize_rejects_empty_and_bad_bits() -> None:
    with pytest.raises(ValueError):
        quantize_symmetric(np.zeros((0, 4)), 8)
    with pytest.raises(ValueError):
        quantize_symmetric(np.ones(3), 1)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bits=st.integers(2, 16),
    magnitude=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_quantize_properties(seed: int, bits: int, magnitude: float) -> None:
    x = np.random.default_rng(seed).normal(size=(7, 5)) * magnitude
    codes, scale = quantize_symmetric(x, bits)
    qmax = 2 ** (bits - 1) - 1
    assert np.abs(codes).max() == qmax  # the largest |x| maps to the top code
    assert np.all(np.abs(x - dequantize(codes, scale)) <= scale / 2 * (1 + 1e-12))
    again, scale_again = quantize_symmetric(x, bits)
    assert scale_again == scale and np.array_equal(again, codes)


def test_split_msb_lsb_hand_example() -> None:
    # -5 = -2 * 4 + 3, 5 = 1 * 4 + 1, -1 = -1 * 4 + 3 (arithmetic shift floors).
    msb, lsb = split_msb_lsb(np.array([-5, 5, 0, -1, -8]), 2)
    assert msb.tolist() == [-2, 1, 0, -1, -2]
    assert lsb.tolist() == [3, 1, 0, 3, 0]
    assert join_msb_lsb(msb, lsb, 2).tolist() == [-5, 5, 0, -1, -8]


@settings(max_examples=60, deadline=None)
@given(
    codes=st.lists(st.integers(-(2**15) + 1, 2**15 - 1), min_size=1, max_size=30),
    lsb_bits=st.integers(0, 12),
)
def test_split_join_roundtrip(codes: list[int], lsb_bits: int) -> None:
    k = np.array(codes, dtype=np.int64)
    msb, lsb = split_msb_lsb(k, lsb_bits)
    assert np.all((lsb >= 0) & (lsb < 2**lsb_bits))
    assert np.array_equal(msb * 2**lsb_bits + lsb, k)
    assert np.array_equal(join_msb_lsb(msb, lsb, lsb_bits), k)


def test_join_rejects_out_of_range_lsb() -> None:
    with pytest.raises(ValueError):
        join_msb_lsb(np.array([1]), np.array([4]), 2)
