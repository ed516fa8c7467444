"""Float64 reference attention for one head (the algorithm the fixed datapath approximates)."""

from __future__ import annotations

import numpy as np


def causal_keep(lq: int, lk: int, q_offset: int) -> np.ndarray:
    """bool[Lq, Lk]: True where key j is visible to query i (j <= i + q_offset)."""
    return np.arange(lk)[None, :] <= np.arange(lq)[:, None] + q_offset


def attention_float(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool, q_offset: int = 0
) -> np.ndarray:
    """softmax(q k^T / sqrt(d), causal mask) v in float64: q [Lq, d], k and v [Lk, d].

    Numerically stable (row max subtracted before exp). Raises ValueError if a causal row
    sees no key.
    """
    qf = np.asarray(q, dtype=np.float64)
    kf = np.asarray(k, dtype=np.float64)
    vf = np.asarray(v, dtype=np.float64)
    if qf.ndim != 2 or kf.shape != vf.shape or qf.shape[1] != kf.shape[1]:
        raise ValueError(f"bad shapes q {qf.shape}, k {kf.shape}, v {vf.shape}")
    z = (qf @ kf.T) / np.sqrt(qf.shape[1])
    if causal:
        keep = causal_keep(qf.shape[0], kf.shape[0], q_offset)
        if not np.all(keep.any(axis=1)):
            raise ValueError("a causal row sees no key (q_offset < 0?)")
        z = np.where(keep, z, -np.inf)
    w = np.exp(z - z.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ vf
