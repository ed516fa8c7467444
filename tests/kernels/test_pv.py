"""Prob x V accumulation and output requantization."""

from __future__ import annotations

import numpy as np
import pytest

from spatten_hls.kernels.formats import PROB_ONE
from spatten_hls.kernels.pv import pv_accumulate, requantize_output
from spatten_hls.kernels.qk import ExactnessError, qk_scores_loop


def test_pv_hand_example() -> None:
    probs = np.array([[32768, 32768], [65536, 0]])
    v = np.array([[3, -5], [4, 7]])
    acc = pv_accumulate(probs, v)
    # row 0: 0.5 * 3 + 0.5 * 4 = 3.5 -> 229376; 0.5 * (-5) + 0.5 * 7 = 1 -> 65536
    assert acc.tolist() == [[229376, 65536], [196608, -327680]]
    assert requantize_output(acc, 4).tolist() == [[4, 1], [3, -5]]  # 3.5 rounds half up
    assert requantize_output(acc, 3).tolist() == [[3, 1], [3, -3]]  # saturates to +-3


def test_requantize_rounds_half_up_and_saturates_symmetrically() -> None:
    acc = np.array([[-98304, -32768, 32767, 2**40, -(2**40)]], dtype=np.int64)
    # -1.5 -> -1, -0.5 -> 0, 0.49998 -> 0, huge -> +-(2**7 - 1)
    assert requantize_output(acc, 8).tolist() == [[-1, 0, 0, 127, -127]]
    with pytest.raises(ValueError):
        requantize_output(acc, 1)


@pytest.mark.parametrize("v_bits", [4, 8, 12, 16])
def test_pv_blas_equals_integer_loop(v_bits: int) -> None:
    rng = np.random.default_rng(v_bits)
    vmax = 2 ** (v_bits - 1) - 1
    probs = rng.integers(0, PROB_ONE + 1, size=(40, 300))
    v = rng.integers(-vmax, vmax + 1, size=(300, 64))
    probs[0, :] = PROB_ONE
    v[:, 0] = vmax
    got = pv_accumulate(probs, v)
    assert np.array_equal(got, qk_scores_loop(probs, np.ascontiguousarray(v.T)))
    out = requantize_output(got, v_bits)
    assert np.abs(out).max() <= vmax


def test_pv_exactness_guard_fires() -> None:
    probs = np.full((1, 2**17), PROB_ONE, dtype=np.int64)
    v = np.full((2**17, 1), 2**20, dtype=np.int64)  # 2**17 * 2**16 * 2**20 = 2**53
    with pytest.raises(ExactnessError):
        pv_accumulate(probs, v)
    with pytest.raises(ValueError):
        pv_accumulate(np.ones((2, 3), dtype=np.int64), np.ones((2, 3), dtype=np.int64))
