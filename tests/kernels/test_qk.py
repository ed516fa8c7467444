"""Q x K^T: float64 BLAS path equals the integer loop; the 2**53 exactness guard."""

from __future__ import annotations

import numpy as np
import pytest

from spatten_hls.kernels.qk import ExactnessError, qk_scores, qk_scores_loop


def test_qk_hand_example() -> None:
    q = np.array([[1, 2], [-3, 4]])
    k = np.array([[5, 6], [7, -8], [0, 1]])
    expected = [[1 * 5 + 2 * 6, 7 - 16, 2], [-15 + 24, -21 - 32, 4]]
    assert qk_scores(q, k).tolist() == expected == [[17, -9, 2], [9, -53, 4]]
    assert qk_scores_loop(q, k).tolist() == expected


@pytest.mark.parametrize("bits", [2, 4, 8, 12, 16])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 9, 8), (33, 70, 64), (16, 16, 128)])
def test_qk_blas_equals_integer_loop(bits: int, shape: tuple[int, int, int]) -> None:
    lq, lk, d = shape
    rng = np.random.default_rng(bits * 1000 + lq)
    qmax = 2 ** (bits - 1) - 1
    q = rng.integers(-qmax, qmax + 1, size=(lq, d))
    k = rng.integers(-qmax, qmax + 1, size=(lk, d))
    q[0, :] = qmax  # force the extreme case into every draw
    k[0, :] = -qmax
    got = qk_scores(q, k)
    assert got.dtype == np.int64
    assert np.array_equal(got, qk_scores_loop(q, k))


def test_qk_exactness_guard_fires() -> None:
    # (2**27 + 1) * (2**27 - 1) = 2**54 - 1 is not a float64: BLAS would return 2**54.
    q = np.array([[2**27 + 1]])
    k = np.array([[2**27 - 1]])
    assert int(np.matmul(q.astype(np.float64), k.astype(np.float64).T)[0, 0]) != 2**54 - 1
    with pytest.raises(ExactnessError, match="2\\*\\*53"):
        qk_scores(q, k)
    with pytest.raises(ExactnessError):  # d * max|q| * max|k| = 2 * 2**26 * 2**26 = 2**53
        qk_scores(np.full((1, 2), 2**26), np.full((1, 2), -(2**26)))


def test_qk_just_below_the_guard_is_exact() -> None:
    q = np.array([[2**26]])
    k = np.array([[2**27 - 1]])
    assert qk_scores(q, k)[0, 0] == 2**26 * (2**27 - 1)


def test_qk_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        qk_scores(np.ones((2, 2)), np.ones((2, 2), dtype=np.int64))
    with pytest.raises(ValueError):
        qk_scores(np.ones((2, 3), dtype=np.int64), np.ones((2, 2), dtype=np.int64))
