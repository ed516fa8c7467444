"""Host-side linear symmetric quantization of Q, K, V (numpy, deterministic).

Granularity: one scale per array passed; the simulator passes one (layer, head) slice.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def _check_bits(bits: int) -> None:
    if not 2 <= int(bits) <= 32:
        raise ValueError(f"bit width must be in [2, 32], got {bits}")


def quantize_symmetric(x: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """Quantize ``x`` to signed ``bits``-wide symmetric codes with one scale.

    s = max|x| / (2**(bits-1) - 1) (s = 1.0 when x is all zero);
    code = clip(rint(x / s), -(2**(bits-1)-1), 2**(bits-1)-1), rint = round half to even.
    Returns (codes as int64, s). Raises ValueError on empty or non-finite input.
    """
    _check_bits(bits)
    xf = np.asarray(x, dtype=np.float64)
    if xf.size == 0:
        raise ValueError("cannot quantize an empty array")
    if not np.all(np.isfinite(xf)):
        raise ValueError("cannot quantize non-finite values")
    qmax = 2 ** (bits - 1) - 1
    amax = float(np.max(np.abs(xf)))
    scale = amax / qmax if amax > 0.0 else 1.0
    codes = np.clip(np.rint(xf / scale), -qmax, qmax).astype(np.int64)
    return codes, scale


def dequantize(codes: np.ndarray, scale: float) -> np.ndarray:
    """Real values of symmetric codes: codes * scale (float64)."""
    return np.asarray(codes, dtype=np.float64) * float(scale)


def split_msb_lsb(k_codes: np.ndarray, lsb_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Split signed codes into (msb, lsb): msb = k >> lsb_bits (floor), lsb = k & (2**lsb_bits-1).

    msb is signed, lsb unsigned in [0, 2**lsb_bits); k == msb * 2**lsb_bits + lsb exactly.
    """
    if lsb_bits < 0:
        raise ValueError(f"lsb_bits must be >= 0, got {lsb_bits}")
    k = np.asarray(k_codes, dtype=np.int64)
    return k >> lsb_bits, k & ((1 << lsb_bits) - 1)


def join_msb_lsb(msb: np.ndarray, lsb: np.ndarray, lsb_bits: int) -> np.ndarray:
    """Exact inverse of :func:`split_msb_lsb`: msb * 2**lsb_bits + lsb."""
    if lsb_bits < 0:
        raise ValueError(f"lsb_bits must be >= 0, got {lsb_bits}")
    lo = np.asarray(lsb, dtype=np.int64)
    if np.any(lo < 0) or np.any(lo >= (1 << lsb_bits)):
        raise ValueError(f"lsb codes must lie in [0, 2**{lsb_bits})")
    return (np.asarray(msb, dtype=np.int64) << lsb_bits) | lo


@njit(parallel=True, cache=True)
def _quantize_rows_into(x: np.ndarray, scales: np.ndarray, qmax: int, out: np.ndarray) -> None:
    for h in prange(x.shape[0]):
        s = scales[h]
        for t in range(x.shape[1]):
            for j in range(x.shape[2]):
                code = np.rint(np.float64(x[h, t, j]) / s)
                out[h, t, j] = min(max(code, -qmax), qmax)


def quantize_heads(
    x: np.ndarray, bits: int, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`quantize_symmetric` applied to each x[h] (one scale per head), in one pass.

    Returns (codes as float64 holding exact integers [H, T, d], scales float64 [H]);
    bit-identical to calling `quantize_symmetric` per head (tests/kernels/test_quantize.py).
    """
    _check_bits(bits)
    if x.ndim != 3 or x.size == 0:
        raise ValueError(f"expected a non-empty [heads, tokens, dim] array, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot quantize non-finite values")
    qmax = 2 ** (bits - 1) - 1
    amax = np.max(np.abs(x), axis=(1, 2)).astype(np.float64)
    scales = np.where(amax > 0.0, amax / qmax, 1.0)
    if out is None:
        out = np.empty(x.shape, dtype=np.float64)
    _quantize_rows_into(x, scales, qmax, out)
    return out, scales
